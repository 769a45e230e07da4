// Package apikey is the domain of apikeyd: API keys, their scopes and
// lifecycle, who may act on them, the errors the service reports, and the
// contract a store must honour.
//
// The package imports no database and no HTTP. Adapters (sqlite, postgres,
// api) translate between it and the outside world; the service package puts
// the pieces together.
//
// A key's plaintext exists only while it is being handed to its owner. Every
// other part of the system sees its SHA-256 hash (Hash) and the first twelve
// characters (the key prefix), which are enough to recognise a key in a list
// but never enough to use it.
package apikey
