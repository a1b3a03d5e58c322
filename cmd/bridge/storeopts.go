package main

import (
	"fmt"
	"os"

	"tollbridge/config"
	"tollbridge/store"
)

// storeOptions opens the store the config names: SQLite in data_dir, or
// the [store] postgres database shared with the domain's other nodes.
// The node name (machine and process) tells in the outbox which node
// holds a claim.
func storeOptions(cfg *config.Config) store.Options {
	host, err := os.Hostname()
	if err != nil {
		host = cfg.Server.Hostname
	}
	return store.Options{Postgres: cfg.Store.Postgres, Node: fmt.Sprintf("%s:%d", host, os.Getpid())}
}
