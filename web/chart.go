package web

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/apikey"
)

// chart is a key's usage over a span of hours or days, one stacked bar per
// period (VALID verdicts below, denials above), drawn as inline SVG by the
// key template from the usage the service counts (SPEC §10).
type chart struct {
	// ID names the chart's elements in the page.
	ID, Title string
	Bars      []bar
	// Valid and Denied are the span's totals; Max is the tallest bar's
	// count, the top of the scale.
	Valid, Denied, Max int64
	// FromLabel and ToLabel name the first and last period shown.
	FromLabel, ToLabel string
}

// bar is one period: its VALID part (ValidY, ValidH) and its denied part
// stacked on it (DeniedY, DeniedH), in SVG units.
type bar struct {
	X, W             int
	ValidY, ValidH   int
	DeniedY, DeniedH int
	Valid, Denied    int64
	Label            string
}

const (
	chartWidth  = 600
	chartHeight = 80
	hourBars    = 24
	dayBars     = 30
)

// usageSpan is one chart's periods: n of them, the last holding now.
type usageSpan struct {
	id, title   string
	granularity string
	n           int
	step        func(t time.Time, i int) time.Time
	label       string // time layout of a bar's label
}

var (
	hourSpan = usageSpan{"usage-hours", "Usage, last 24 hours", apikey.UsageHour, hourBars,
		func(t time.Time, i int) time.Time { return t.Add(time.Duration(i) * time.Hour) }, "Jan 2 15:04"}
	daySpan = usageSpan{"usage-days", "Usage, last 30 days", apikey.UsageDay, dayBars,
		func(t time.Time, i int) time.Time { return t.AddDate(0, 0, i) }, "Jan 2"}
)

// first is the start of the span's first period, for a span ending with
// the period that holds now.
func (s usageSpan) first(now time.Time) time.Time {
	now = now.UTC()
	if s.granularity == apikey.UsageDay {
		today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return s.step(today, -(s.n - 1))
	}
	return s.step(now.Truncate(time.Hour), -(s.n - 1))
}

// usageChart draws buckets (oldest first, as the service returns them) as
// the span's bars from first on.
func usageChart(s usageSpan, first time.Time, buckets []apikey.UsageBucket) chart {
	c := chart{ID: s.id, Title: s.title,
		FromLabel: first.Format(s.label), ToLabel: s.step(first, s.n-1).Format(s.label)}
	byStart := make(map[int64]apikey.UsageBucket, len(buckets))
	for _, b := range buckets {
		byStart[b.Start.Unix()] = b
	}
	w := chartWidth / s.n
	for i := range s.n {
		start := s.step(first, i)
		b := byStart[start.Unix()]
		valid := b.Counts[string(apikey.CodeValid)]
		var denied int64
		var codes []string
		for code, n := range b.Counts {
			if code != string(apikey.CodeValid) && n > 0 {
				denied += n
				codes = append(codes, fmt.Sprintf("%s %d", code, n))
			}
		}
		slices.Sort(codes)
		label := fmt.Sprintf("%s: %d valid, %d denied", start.Format(s.label), valid, denied)
		if len(codes) > 0 {
			label += " (" + strings.Join(codes, ", ") + ")"
		}
		if b.CreditsSpent > 0 {
			label += fmt.Sprintf(", %d credits spent", b.CreditsSpent)
		}
		c.Bars = append(c.Bars, bar{X: i * w, W: w - 2, Valid: valid, Denied: denied, Label: label})
		c.Valid += valid
		c.Denied += denied
		c.Max = max(c.Max, valid+denied)
	}
	for i := range c.Bars {
		b := &c.Bars[i]
		b.ValidH, b.DeniedH = height(b.Valid, c.Max), height(b.Denied, c.Max)
		if over := b.ValidH + b.DeniedH - chartHeight; over > 0 { // the minimum heights of both parts
			if b.ValidH > b.DeniedH {
				b.ValidH -= over
			} else {
				b.DeniedH -= over
			}
		}
		b.ValidY = chartHeight - b.ValidH
		b.DeniedY = b.ValidY - b.DeniedH
	}
	return c
}

// height is n's share of the chart's height at a scale topped by top; a
// non-zero count is at least 2 units, so that it shows.
func height(n, top int64) int {
	if n == 0 || top == 0 {
		return 0
	}
	return max(int(n*chartHeight/top), 2)
}
