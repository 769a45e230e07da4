package web

import (
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/service"
)

// cookieName is the session cookie. Its value is a random token; the
// server keeps only its SHA-256, next to the session.
const cookieName = "apikeyd_session"

// tokenLen is the length of a session token: two rand.Text, 2×26 base32
// characters, 2×130 bits.
const tokenLen = 52

// sessions holds the signed-in sessions of this process. They live in
// memory: each replica has its own, and a restart signs everyone out.
type sessions struct {
	idle time.Duration
	now  func() time.Time

	mu     sync.Mutex
	byHash map[[sha256.Size]byte]*session
}

// session is one signed-in browser.
type session struct {
	// cred is the credential the session acts with, as kind and hash;
	// it is resolved again on every request.
	cred     service.Credential
	lastSeen time.Time
	// once is a key's plaintext waiting to be shown on the next page, the
	// one after a create or rotate; whichever page comes next takes it.
	once *shownOnce
	// notice is a line for the next page ("Key revoked.").
	notice string
}

// shownOnce is a key's plaintext on its way to the one page that shows it.
type shownOnce struct {
	KeyID     string
	Plaintext string
	Rotated   bool
}

func newSessions(idle time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, now: now, byHash: map[[sha256.Size]byte]*session{}}
}

func hashToken(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// open starts a session for cred and returns its token, for the cookie.
// It also drops the sessions that have expired.
func (s *sessions) open(cred service.Credential) string {
	token := rand.Text() + rand.Text()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, ss := range s.byHash {
		if s.expired(ss, now) {
			delete(s.byHash, h)
		}
	}
	s.byHash[hashToken(token)] = &session{cred: cred, lastSeen: now}
	return token
}

func (s *sessions) expired(ss *session, now time.Time) bool { return now.Sub(ss.lastSeen) >= s.idle }

// use returns the credential of token's session and marks it used, or
// false when there is no such session or it has been idle too long. It
// also hands over what the session had for the next page: the notice, and
// a plaintext key.
func (s *sessions) use(token string) (c service.Credential, notice string, once *shownOnce, ok bool) {
	if token == "" {
		return c, "", nil, false
	}
	h := hashToken(token)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byHash[h]
	if ss == nil {
		return c, "", nil, false
	}
	if s.expired(ss, now) {
		delete(s.byHash, h)
		return c, "", nil, false
	}
	ss.lastSeen = now
	notice, once = ss.notice, ss.once
	ss.notice, ss.once = "", nil
	return ss.cred, notice, once, true
}

// leave sets what token's session shows on its next page.
func (s *sessions) leave(token, notice string, once *shownOnce) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.byHash[hashToken(token)]; ss != nil {
		ss.notice, ss.once = notice, once
	}
}

// close ends token's session.
func (s *sessions) close(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash, hashToken(token))
}

// sessionToken returns the session token r's cookie carries, or "".
func sessionToken(r *http.Request) string {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return ""
	}
	if len(c.Value) != tokenLen {
		return ""
	}
	return c.Value
}

// setSessionCookie gives the browser its session token: never readable by
// scripts, never sent along with a request another site started, and only
// over https when the browser speaks it.
func (u *UI) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    token,
		Path:     Prefix,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   u.https(r),
		SameSite: http.SameSiteStrictMode,
	})
}
