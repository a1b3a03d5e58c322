package main

import (
	"context"
	"fmt"
	"os"

	"tollbridge/config"
	"tollbridge/store"
)

// openConfigStore opens the store cfg describes: its data directory, and
// with [store] s3_endpoint sealed parts in that bucket.
func openConfigStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	opts, err := storeOptions(cfg)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, cfg.Server.DataDir, opts)
	if err != nil && opts.S3 != nil {
		return nil, fmt.Errorf("%s: store.s3_endpoint %s: %w", cfg.File, opts.S3.Endpoint, err)
	}
	return st, err
}

// storeOptions are the store.Options of cfg's [store] section. The S3
// credentials come from the environment, as every S3 client takes them.
//
// The node name (machine and process) tells which node of the domain holds
// an outbox claim.
func storeOptions(cfg *config.Config) (store.Options, error) {
	sc := cfg.Store
	host, err := os.Hostname()
	if err != nil {
		host = cfg.Server.Hostname
	}
	opts := store.Options{Postgres: sc.Postgres, Node: fmt.Sprintf("%s:%d", host, os.Getpid())}
	if sc.S3Endpoint == "" {
		return opts, nil
	}
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if key == "" || secret == "" {
		return store.Options{}, fmt.Errorf("%s: store.s3_endpoint is set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set in the environment", cfg.File)
	}
	opts.S3 = &store.S3Options{
		Endpoint: sc.S3Endpoint, Bucket: sc.S3Bucket, TLS: sc.S3TLS,
		AccessKey: key, SecretKey: secret,
	}
	return opts, nil
}
