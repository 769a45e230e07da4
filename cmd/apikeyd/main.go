// Command apikeyd is the self-hosted API key service. See `apikeyd --help`.
package main

import (
	"os"

	"github.com/apikeyd/apikeyd/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
