// Package e2e holds apikeyd's end-to-end tests. They build the real binary,
// start it as a child process on 127.0.0.1:0 with a temporary data
// directory, and drive it over HTTP: signals, restarts and kill -9 included.
// Everything the servers print is captured and searched for every key and
// secret they issued.
package e2e
