package store

import (
	"os"
	"testing"

	"tollbridge/internal/s3test"
)

// TestMain stops the S3 server the blob tests started, if any.
func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
