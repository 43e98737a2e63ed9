package ui

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/nocsoc/nocsoc/internal/sigma"
)

// levelOrder sorts rules by severity, most severe first.
var levelOrder = map[string]int{"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}

// RuleRow is one detection rule as the console lists it. Author is shown
// wherever a rule is: the Detection Rule License (DRL 1.1) of the SigmaHQ
// rules asks for that credit.
type RuleRow struct {
	ID, Title, Level, Status, Author, Description, Path string
	Tags                                                []string
	Correlation                                         string
	Hits                                                uint64
	Disabled                                            bool
	Raw                                                 string
}

// URL is the rule's detail page.
func (r RuleRow) URL() string { return "/rules/" + url.PathEscape(r.ID) }

// RulesData is the Rules page's data.
type RulesData struct {
	Running            bool
	Level, Tag, Text   string
	Levels, Tags       []string
	Rules              []RuleRow
	Total, DisabledNum int
}

func (u *UI) ruleRows(r *http.Request) ([]RuleRow, error) {
	if u.ext.det == nil {
		return nil, nil
	}
	eng := u.ext.det.Engine()
	if eng == nil {
		return nil, nil
	}
	hits := u.ext.det.Hits()
	var rows []RuleRow
	for _, ru := range eng.Rules() {
		rows = append(rows, ruleRow(ru, hits[ru.ID], u.ext.det.Disabled(ru.ID)))
	}
	sort.Slice(rows, func(i, j int) bool {
		li, lj := levelOrder[rows[i].Level], levelOrder[rows[j].Level]
		if li != lj {
			return li < lj
		}
		return rows[i].Title < rows[j].Title
	})
	return rows, nil
}

func ruleRow(ru *sigma.Rule, hits uint64, disabled bool) RuleRow {
	row := RuleRow{ID: ru.ID, Title: ru.Title, Level: strings.ToLower(ru.Level), Status: ru.Status, Author: ru.Author,
		Description: ru.Description, Path: ru.Path, Tags: ru.Tags, Hits: hits, Disabled: disabled, Raw: string(ru.Raw)}
	if row.Author == "" {
		row.Author = "unknown author"
	}
	if ru.Correlation != nil {
		row.Correlation = ru.Correlation.Type
	}
	return row
}

func (u *UI) rulesPage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	d := RulesData{Running: u.ext.det != nil, Level: q.Get("level"), Tag: q.Get("tag"), Text: strings.TrimSpace(q.Get("q"))}
	all, err := u.ruleRows(r)
	if err != nil {
		return err
	}
	d.Total = len(all)
	tags := map[string]bool{}
	levels := map[string]bool{}
	text := strings.ToLower(d.Text)
	for _, row := range all {
		levels[row.Level] = true
		for _, t := range row.Tags {
			tags[t] = true
		}
		if row.Disabled {
			d.DisabledNum++
		}
		switch {
		case d.Level != "" && row.Level != d.Level:
		case d.Tag != "" && !slices.Contains(row.Tags, d.Tag):
		case text != "" && !strings.Contains(strings.ToLower(row.Title+" "+row.ID+" "+row.Author+" "+row.Description), text):
		default:
			d.Rules = append(d.Rules, row)
		}
	}
	for l := range levels {
		d.Levels = append(d.Levels, l)
	}
	sort.Slice(d.Levels, func(i, j int) bool { return levelOrder[d.Levels[i]] < levelOrder[d.Levels[j]] })
	for t := range tags {
		d.Tags = append(d.Tags, t)
	}
	sort.Strings(d.Tags)
	p := Page{Title: "Detection rules", Nav: "rules", Data: d}
	switch q.Get("done") {
	case "disabled":
		p.Flash = "Rule disabled: its matches raise no alerts."
	case "enabled":
		p.Flash = "Rule enabled."
	}
	return u.render(w, r, http.StatusOK, "rules", p)
}

func (u *UI) findRule(r *http.Request) (RuleRow, error) {
	id := r.PathValue("id")
	rows, err := u.ruleRows(r)
	if err != nil {
		return RuleRow{}, err
	}
	for _, row := range rows {
		if row.ID == id {
			return row, nil
		}
	}
	return RuleRow{}, errorf(http.StatusNotFound, "No detection rule with id %q.", id)
}

func (u *UI) rulePage(w http.ResponseWriter, r *http.Request) error {
	row, err := u.findRule(r)
	if err != nil {
		return err
	}
	return u.render(w, r, http.StatusOK, "rule", Page{Title: row.Title, Nav: "rules", Data: row})
}

// setRuleState switches a rule off or on: stored first (audited), then
// the detector's set is reloaded from the store, so the running detector
// and the store never disagree.
func (u *UI) setRuleState(w http.ResponseWriter, r *http.Request) error {
	if err := u.needOps(); err != nil {
		return err
	}
	row, err := u.findRule(r)
	if err != nil {
		return err
	}
	var off bool
	switch r.PathValue("action") {
	case "disable":
		off = true
	case "enable":
	default:
		return errorf(http.StatusNotFound, "No such action.")
	}
	ctx := r.Context()
	if err := u.ext.ops.SetRuleDisabled(ctx, actorOf(r), row.ID, off); err != nil {
		return err
	}
	set, err := u.ext.ops.DisabledRules(ctx)
	if err != nil {
		return err
	}
	u.ext.det.SetDisabled(set)
	done := "enabled"
	if off {
		done = "disabled"
	}
	next := "/rules?done=" + done
	if r.PostFormValue("from") == "detail" {
		next = row.URL()
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}
