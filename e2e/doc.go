// Package e2e holds apikeyd's end-to-end tests. They build the real binary,
// start it as a child process on 127.0.0.1:0 with a temporary data
// directory, and drive it over HTTP: signals, restarts and kill -9 included.
// Everything the servers print is captured and searched for every key and
// secret they issued, and for the admin token and master key they were
// given or generated. Servers log JSON, which the harness reads;
// TestTextLogSecrets runs the traffic that handles secrets against a
// server logging text.
//
// Every test runs on each backend: on SQLite, then, when
// APIKEYD_TEST_DATABASE_URL names a PostgreSQL database (always under
// CI=true), once more with each server on a fresh database of that server
// and its secrets given in APIKEYD_ADMIN_TOKEN and APIKEYD_MASTER_KEY.
// TestMain runs the whole suite once per backend; failures name the backend
// in the log of the server they started. TestPostgresOutage, which stops
// the PostgreSQL server, runs in the PostgreSQL pass only, as do the tests
// of several processes on one store: a SQLite data directory takes a single
// process, which TestSQLiteOneProcess checks in the SQLite pass only.
package e2e
