// Package usage decides, from memory, whether a verify may pass its rate
// limits and spend its credits (SPEC §10, docs/limits.md): an Engine per
// process, holding per subject ("key:<lineage>", "owner:<project>/<owner>")
// the counters of each limit's window and the credits it has reserved.
//
// # Windows
//
// A limit of L per D milliseconds is counted in slices of width
// w = ceil(D/10); an admission at t is allowed when the slices that overlap
// (t − D, t] — at most eleven, kept in a ring — hold fewer than L. So no
// interval of length D ever holds more than L admissions, and under demand
// above L at least 10/11 of L pass per D.
//
// # One process or several
//
// Alone (Config.Shared unset: SQLite, or one process on PostgreSQL that is
// certain to be alone), the counters are the truth and counting is exact.
// Shared, every admission must also be covered by a grant that the
// Reserver (the store) recorded for its slice; a grant runs out, the
// engine asks for more, and what is unspent when the grant ends is handed
// back at the next Flush. Grants shrink as the window fills (GrantSize), so
// the replicas together never admit more than L per window and lose at
// most a few grants' worth to replicas without demand. A limit far from
// full is granted in spans (apikey.SpanTime, 10 s of slices) sized from
// the demand seen, so that a subject costs about one grant per span, not
// one per slice; each Flush narrows what was spent from a span grant to
// the slices it was spent in, and hands back a span grant nobody spent
// from since the last Flush.
//
// Credits are always reserved from the Reserver in slices
// (CreditSliceSize) and spent from memory; spends are reported at every
// Flush and what is unspent is handed back by Close, so that after every
// replica closed, remaining + admitted = the starting balance.
//
// # All or nothing
//
// Admit locks the states of all its subjects (in ID order), checks every
// limit and then every balance, and only if all admit counts the verify
// against each of them: a refusal changes no counter and spends nothing,
// and needs no hand-back. A subject's lock is held across a reservation
// from the Reserver, so concurrent misses of one subject share one
// reservation (those that waited find it done) while other subjects go on.
// A subject whose balance was found empty is answered from memory for up
// to a second (or until its next refill); Refresh forgets that.
//
// # Cost
//
// An admission that hits reserved allowance takes two mutexes and a map
// lookup and allocates nothing; the store is called only when a slice runs
// out. Idle subjects are dropped at Flush, so memory follows the subjects
// in use, not all keys.
package usage
