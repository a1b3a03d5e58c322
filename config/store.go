package config

import (
	"net"
	"net/url"
	"strconv"
)

// Store says where the bridge keeps what is not in data_dir (version
// 1.1): sealed parts in an S3-compatible object store, which the nodes of
// one domain share. The credentials come from the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from this file.
type Store struct {
	// Postgres is a PostgreSQL connection string ("postgres://…"): users,
	// mail metadata, the queue and tickets live in that database, which
	// several bridges of one domain share. Empty: SQLite in data_dir.
	Postgres string `toml:"postgres"`
	// S3Endpoint is host:port of the object store; empty keeps sealed
	// parts as files under data_dir/blobs.
	S3Endpoint string `toml:"s3_endpoint"`
	// S3Bucket is the bucket of sealed parts, made when missing.
	S3Bucket string `toml:"s3_bucket"`
	// S3TLS speaks HTTPS to the endpoint (the default); false is plain
	// HTTP, for an object store on loopback or a private network.
	S3TLS bool `toml:"s3_tls"`
}

// validateStore checks [store]: an endpoint to connect to and a bucket
// name S3 accepts, each only with the other.
func (cfg *Config) validateStore(c *checker) {
	cfg.validatePostgres(c)
	st := cfg.Store
	if st.S3Endpoint == "" {
		if st.S3Bucket != "" {
			c.fail("store.s3_bucket", "needs store.s3_endpoint")
		}
		return
	}
	host, port, err := net.SplitHostPort(st.S3Endpoint)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		c.fail("store.s3_endpoint", `must be host:port (e.g. "s3.example.org:443"), got %q`, st.S3Endpoint)
	}
	if st.S3Bucket == "" {
		c.fail("store.s3_bucket", "must be set with store.s3_endpoint")
	} else if !validBucket(st.S3Bucket) {
		c.fail("store.s3_bucket", "must be 3 to 63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit, got %q", st.S3Bucket)
	}
}

// validBucket applies S3's bucket naming rules (the common part that
// every S3-compatible store accepts).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, r := range b {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || i == len(b)-1 || r != '.' && r != '-') {
			return false
		}
	}
	return true
}

// validatePostgres checks [store] postgres: a URL connection string (the
// key/value form would hide a mistyped key until the first connection).
// The error does not quote it: it may hold a password.
func (cfg *Config) validatePostgres(c *checker) {
	v := cfg.Store.Postgres
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		c.fail("store.postgres", `must be a postgres://user@host:port/database URL, got a string of %d characters`, len(v))
	}
}
