package web

import (
	"fmt"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// chart is a bar chart of the last chartDays days, drawn as inline SVG by
// the key template. Until usage is counted per key (SPEC §10), a key's
// activity is what its audit trail records: creations, changes, rotations
// and revocations, per day.
type chart struct {
	Bars  []bar
	Total int
	// Max is the tallest bar's count, the top of the scale.
	Max int
	// From and To are the first and last day shown.
	From, To time.Time
}

type bar struct {
	X, Y, W, H int
	Count      int
	Label      string
}

const (
	chartDays   = 30
	chartWidth  = 600
	chartHeight = 80
)

// activityChart counts evs per UTC day over the last chartDays days.
func activityChart(evs []*apikey.AuditEvent, now time.Time) chart {
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(chartDays - 1))
	counts := make([]int, chartDays)
	c := chart{From: first, To: today}
	for _, e := range evs {
		day := int(e.CreatedAt.UTC().Sub(first) / (24 * time.Hour))
		if e.CreatedAt.Before(first) || day >= chartDays {
			continue
		}
		counts[day]++
		c.Total++
		c.Max = max(c.Max, counts[day])
	}
	w := chartWidth / chartDays
	for i, n := range counts {
		h := 0
		if c.Max > 0 {
			h = n * chartHeight / c.Max
		}
		if n > 0 && h < 2 {
			h = 2
		}
		day := first.AddDate(0, 0, i)
		c.Bars = append(c.Bars, bar{
			X: i * w, Y: chartHeight - h, W: w - 2, H: h, Count: n,
			Label: fmt.Sprintf("%s: %s", day.Format("Jan 2"), plural(n, "event")),
		})
	}
	return c
}
