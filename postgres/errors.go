package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/apikeyd/apikeyd/apikey"
)

// SQLSTATE codes the store acts on
// (https://www.postgresql.org/docs/current/errcodes-appendix.html).
const (
	uniqueViolation           = "23505"
	invalidTextRepresentation = "22P02"
	serializationFailed       = "40001"
	deadlockDetected          = "40P01"
	queryCanceled             = "57014" // statement_timeout, or a cancel request
	lockNotAvailable          = "55P03" // lock_timeout
	readOnlyTransaction       = "25006" // connected to a standby, e.g. mid-failover
	adminShutdown             = "57P01"
	crashShutdown             = "57P02"
	cannotConnectNow          = "57P03" // starting up or shutting down
	ioError                   = "58030"
	connectionException       = "08" // class: the connection failed
	insufficientResource      = "53" // class: too many connections, disk full, out of memory
)

// dbError translates a driver error into the domain's terms and adds op as
// context: no rows is ENOTFOUND, a unique violation ECONFLICT, and anything
// that says the database cannot answer now (it is down, restarting, out of
// connections, a standby, too slow, unreachable) EUNAVAILABLE, which the API
// answers with 503. Server messages name constraints and columns; the values
// involved are only in the error's Detail, which Error() leaves out, so no
// key hash or secret can end up in an error text.
func dbError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, apikey.ErrNotFound)
	}
	werr := fmt.Errorf("%s: %w", op, err)
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		// Whatever the server said (starting up, too many connections, no
		// such database), it would not let us in.
		return unavailable(werr)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == uniqueViolation:
			return &apikey.Error{Code: apikey.ECONFLICT, Message: "already exists", Err: werr}
		case unavailableState(pe.Code):
			return unavailable(werr)
		}
		return werr
	}
	if connectionLost(err) {
		return unavailable(werr)
	}
	return werr
}

// unavailableState reports whether a SQLSTATE means that the database
// cannot answer now but may later.
func unavailableState(code string) bool {
	switch code {
	case serializationFailed, deadlockDetected, queryCanceled, lockNotAvailable, readOnlyTransaction,
		adminShutdown, crashShutdown, cannotConnectNow, ioError:
		return true
	}
	return strings.HasPrefix(code, connectionException) || strings.HasPrefix(code, insufficientResource)
}

// connectionLost reports whether err, which the server did not send, comes
// from reaching the server: a broken or closed connection, a closed pool,
// or a call that ran out of time (including waiting for a connection from a
// busy pool).
func connectionLost(err error) bool {
	var ne net.Error
	switch {
	case errors.As(err, &ne), pgconn.Timeout(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, puddle.ErrClosedPool),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	}
	return false
}

// serializationFailure reports whether err rolled its transaction back in a
// way that running it again may avoid.
func serializationFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == serializationFailed || pe.Code == deadlockDetected)
}

// unavailable marks err as the database not answering.
func unavailable(err error) error {
	return &apikey.Error{Code: apikey.EUNAVAILABLE, Message: "the database is unavailable", Err: err}
}
