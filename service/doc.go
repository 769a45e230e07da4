// Package service carries out what apikeyd's API offers — authenticate,
// create, list, get, patch, revoke, rotate, verify — on top of a store, an
// index that answers verifications, and a buffer of last uses. It decides
// who may do what (with the policy of package apikey) and writes every change
// together with its audit event in one transaction.
//
// Every mutation runs in update, which hands it a writeTx (tx.go): the
// transaction records each key written, for the index to apply once the
// transaction has committed, and writes audit events (writeTx.audit) with
// the values before and after the change. No call site keeps the index or
// the audit log in step by hand.
//
// It knows nothing of HTTP: the api package translates requests into calls
// here and apikey errors into problem responses.
package service
