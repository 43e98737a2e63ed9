package ui

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nocsoc/nocsoc/internal/incident"
	"github.com/nocsoc/nocsoc/internal/store"
)

var (
	tlEntryRE = regexp.MustCompile(`<span class="msg">(entry-\d+)</span>`)
	tlNextRE  = regexp.MustCompile(`href="(/incidents/1\?[^"#]*)#timeline" id="timeline-next"`)
)

// TestIncidentTimelineNewestFirst pages through a 700-entry timeline both
// ways on the incident page and checks every entry appears once, in order.
func TestIncidentTimelineNewestFirst(t *testing.T) {
	e := newEnv(t)
	e.fire("disk full", "noc", "high", map[string]string{"host": "db1"}) // incident 1
	const n = 700
	err := e.st.Batch(context.Background(), func(tx *store.Tx) error {
		for i := range n {
			if _, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: 1, Actor: "test", Kind: "note",
				Message: fmt.Sprintf("entry-%04d", i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := e.login("viewer", passwords["viewer"])
	walk := func(first string) (msgs []string, pages int) {
		t.Helper()
		for path := first; path != ""; pages++ {
			resp, body := e.get(c, path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d", path, resp.StatusCode)
			}
			for _, m := range tlEntryRE.FindAllStringSubmatch(body, -1) {
				msgs = append(msgs, m[1])
			}
			path = ""
			if m := tlNextRE.FindStringSubmatch(body); m != nil {
				path = strings.ReplaceAll(m[1], "&amp;", "&")
			}
			if pages > 10 {
				t.Fatalf("paging does not end")
			}
		}
		return msgs, pages
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("entry-%04d", i))
	}
	asc, ascPages := walk("/incidents/1")
	if !slices.Equal(asc, want) || ascPages != 3 {
		t.Errorf("oldest first: %d entries on %d pages, want %d in order on 3", len(asc), ascPages, n)
	}
	desc, descPages := walk("/incidents/1?order=desc")
	slices.Reverse(want)
	if !slices.Equal(desc, want) || descPages != 3 {
		t.Errorf("newest first: %d entries on %d pages, want %d in reverse order on 3; first %v", len(desc), descPages, n, desc[:min(3, len(desc))])
	}
	for _, bad := range []string{"/incidents/1?order=desc&before=x", "/incidents/1?order=desc&before=-1", "/incidents/1?order=up"} {
		if resp, _ := e.get(c, bad); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestTimelineNewest checks the paged fallback against the store directly,
// across page boundaries of the scan.
func TestTimelineNewest(t *testing.T) {
	e := newEnv(t)
	e.fire("disk full", "noc", "high", map[string]string{"host": "db1"})
	ctx := context.Background()
	err := e.st.Batch(ctx, func(tx *store.Tx) error {
		for i := range 2500 {
			if _, err := tx.AppendTimeline(incident.TimelineEntry{IncidentID: 1, Actor: "test", Kind: "note", Message: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []incident.TimelineEntry
	for after := int64(0); ; {
		page, err := e.st.Timeline(ctx, 1, 1000, after)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].ID
	}
	ids := func(es []incident.TimelineEntry) []int64 {
		var out []int64
		for _, x := range es {
			out = append(out, x.ID)
		}
		return out
	}
	rev := ids(all)
	slices.Reverse(rev)
	for _, tc := range []struct {
		limit  int
		before int64
		want   []int64
	}{
		{10, 0, rev[:10]},
		{300, 0, rev[:300]},
		{5000, 0, rev[:1000]}, // the store reads at most 1000 a page
		{7, rev[1499], rev[1500:1507]},
		{7, rev[len(rev)-3], rev[len(rev)-2:]},
		{7, rev[len(rev)-1], nil},
	} {
		got, err := timelineNewest(ctx, e.st, 1, tc.limit, tc.before)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), tc.want) {
			t.Errorf("timelineNewest(limit %d, before %d) = %d entries %v…, want %d", tc.limit, tc.before, len(got), ids(got)[:min(3, len(got))], len(tc.want))
		}
	}
}
