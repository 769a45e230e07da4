package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// creditOps are the credits form's choices, as POST
// /v1/api-keys/{id}/credits names them.
var creditOps = []option{
	{string(apikey.CreditIncrement), "Add"},
	{string(apikey.CreditDecrement), "Take away"},
	{string(apikey.CreditSet), "Set the balance to"},
}

// adjustCredits changes a key's balance by the form's operation and
// amount; the service checks both and applies them against verifies
// running meanwhile.
func (u *UI) adjustCredits(w http.ResponseWriter, r *http.Request, rq *request) {
	id := r.PathValue("id")
	amount, err := strconv.ParseInt(strings.TrimSpace(r.PostFormValue("amount")), 10, 64)
	if err != nil {
		u.showKey(w, r, rq, http.StatusBadRequest, func(v *keyView) {
			v.CreditsError = fmt.Sprintf("Enter a whole number of credits, 0 to %d.", apikey.MaxCredits)
		})
		return
	}
	after, err := u.svc.AdjustCredits(r.Context(), rq.p, id, apikey.CreditOp(r.PostFormValue("op")), amount)
	if err != nil {
		u.refused(w, r, rq, err, func(v *keyView, msg string) { v.CreditsError = msg })
		return
	}
	u.sessions.leave(rq.token, fmt.Sprintf("Credits changed: %d remaining.", after), nil)
	http.Redirect(w, r, keyURL(id), http.StatusSeeOther)
}

// limitView is a rate limit as the key page states it.
type limitView struct{ Name, Rule string }

func limitViews(ls []apikey.RateLimit) []limitView {
	out := make([]limitView, len(ls))
	for i, l := range ls {
		out[i] = limitView{Name: l.Name, Rule: fmt.Sprintf("%d per %s", l.Limit, span(time.Duration(l.DurationMS)*time.Millisecond))}
	}
	return out
}

// span says a limit's window in the largest unit that divides it.
func span(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if d%u.d == 0 {
			n := int(d / u.d)
			if n == 1 {
				return u.name
			}
			return plural(n, u.name)
		}
	}
	return d.String()
}

// refillText says a balance's refill schedule, or "" for none.
func refillText(c *apikey.Credits) string {
	if c == nil || c.Refill == nil {
		return ""
	}
	f := c.Refill
	what := fmt.Sprintf("set to %d", f.Amount)
	if f.Mode == apikey.RefillAdd {
		what = fmt.Sprintf("%d added", f.Amount)
	}
	if f.Interval == apikey.RefillMonthly {
		day := max(f.DayOfMonth, 1)
		return fmt.Sprintf("%s monthly, on day %d at 00:00 UTC (or the month's last day)", what, day)
	}
	return what + " daily at 00:00 UTC"
}
