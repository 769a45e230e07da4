package e2e

// The suite tests a binary it builds itself, which `go test` cannot see:
// without this import a change to the server would not invalidate the
// cached result of the suite. Importing the command's packages makes them
// part of the test's cache key.
import _ "github.com/apikeyd/apikeyd/cli"
