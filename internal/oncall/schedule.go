package oncall

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/check"
)

// Rotation kinds.
const (
	RotationDaily  = "daily"
	RotationWeekly = "weekly"
	RotationCustom = "custom"
)

// Teams lists the teams a schedule can belong to.
var Teams = []string{"noc", "soc"}

// MinCustomLength is the shortest custom rotation: shorter shifts are almost
// certainly a typo ("12" meant as hours) and would page a new person every
// few minutes.
const MinCustomLength = time.Hour

// MaxShifts caps how many shifts Shifts returns, so a careless range (years
// of an hourly custom rotation) cannot build an unbounded answer.
const MaxShifts = 10000

// Shift is one stretch of time during which User is on call.
type Shift struct {
	User  string    `json:"user"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Override is true when an override, not the rotation, put User on call.
	Override bool `json:"override"`
}

// Validate checks the schedule and returns a *check.FieldError naming the
// first bad field. On success it also caches the parsed time zone and
// hand-over time, so call it before sharing the schedule between goroutines.
func (s *Schedule) Validate() error {
	if strings.TrimSpace(s.Name) == "" {
		return &check.FieldError{Field: "name", Reason: "is required"}
	}
	if len(s.Name) > 128 {
		return &check.FieldError{Field: "name", Reason: "must be at most 128 characters"}
	}
	if s.Team != "noc" && s.Team != "soc" {
		return &check.FieldError{Field: "team", Reason: fmt.Sprintf("%q must be noc or soc", s.Team)}
	}
	if strings.TrimSpace(s.Tier) == "" {
		return &check.FieldError{Field: "tier", Reason: "is required (for example \"L1\")"}
	}
	if len(s.Users) == 0 {
		return &check.FieldError{Field: "users", Reason: "a schedule needs at least one user"}
	}
	for i, u := range s.Users {
		if strings.TrimSpace(u) == "" {
			return &check.FieldError{Field: fmt.Sprintf("users[%d]", i), Reason: "must not be empty"}
		}
	}
	switch s.Rotation {
	case RotationDaily, RotationWeekly:
	case RotationCustom:
		if s.Length.D() < MinCustomLength {
			return &check.FieldError{Field: "length", Reason: fmt.Sprintf("a custom rotation needs a length of at least %v (got %v)", MinCustomLength, s.Length.D())}
		}
	default:
		return &check.FieldError{Field: "rotation", Reason: fmt.Sprintf("%q must be daily, weekly or custom", s.Rotation)}
	}
	h, m, err := parseHandover(s.Handover)
	if err != nil {
		return &check.FieldError{Field: "handover", Reason: err.Error()}
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return &check.FieldError{Field: "timezone", Reason: fmt.Sprintf("unknown time zone %q (use an IANA name such as Europe/Berlin)", s.TimeZone)}
	}
	if s.Start.IsZero() {
		return &check.FieldError{Field: "start", Reason: "is required: it anchors the rotation (users[0] is on call from the first hand-over at or after it)"}
	}
	for i, o := range s.Overrides {
		if strings.TrimSpace(o.User) == "" {
			return &check.FieldError{Field: fmt.Sprintf("overrides[%d].user", i), Reason: "is required"}
		}
		if o.Start.IsZero() {
			return &check.FieldError{Field: fmt.Sprintf("overrides[%d].start", i), Reason: "is required"}
		}
		if !o.End.After(o.Start) {
			return &check.FieldError{Field: fmt.Sprintf("overrides[%d].end", i), Reason: "must be after start"}
		}
	}
	s.loc, s.handH, s.handM = loc, h, m
	return nil
}

// parseHandover reads "HH:MM" (24-hour clock).
func parseHandover(v string) (h, m int, err error) {
	bad := fmt.Errorf("%q must be a 24-hour time \"HH:MM\" such as \"09:00\"", v)
	hs, ms, ok := strings.Cut(v, ":")
	if !ok || len(hs) != 2 || len(ms) != 2 {
		return 0, 0, bad
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, 0, bad
	}
	return h, m, nil
}

// params returns the zone and hand-over, from the cache Validate fills or
// parsed on the spot for a schedule that was never validated. ok is false
// when the schedule cannot produce an answer.
func (s *Schedule) params() (loc *time.Location, h, m int, ok bool) {
	if len(s.Users) == 0 {
		return nil, 0, 0, false
	}
	if s.loc != nil {
		return s.loc, s.handH, s.handM, true
	}
	h, m, err := parseHandover(s.Handover)
	if err != nil {
		return nil, 0, 0, false
	}
	loc, err = time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, 0, 0, false
	}
	if s.Rotation == RotationCustom && s.Length.D() <= 0 {
		return nil, 0, 0, false
	}
	return loc, h, m, true
}

// civil is a calendar date counted in days since 1970-01-01. Rotations step
// in calendar days, not 24-hour blocks, so that a hand-over stays at the same
// local wall-clock time across DST changes.
func civil(y int, mo time.Month, d int) int64 {
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// handoverOn returns the hand-over instant on the calendar day dayNum.
// time.Date resolves a wall-clock time that a DST change skips or repeats
// the same way every time, so shifts stay contiguous even then.
func handoverOn(dayNum int64, h, m int, loc *time.Location) time.Time {
	d := time.Unix(dayNum*86400, 0).UTC()
	return time.Date(d.Year(), d.Month(), d.Day(), h, m, 0, 0, loc)
}

// lastHandoverDay returns the calendar day of the latest daily hand-over at
// or before t.
func lastHandoverDay(t time.Time, h, m int, loc *time.Location) int64 {
	lt := t.In(loc)
	day := civil(lt.Year(), lt.Month(), lt.Day())
	if t.Before(handoverOn(day, h, m, loc)) {
		day--
	}
	return day
}

// firstHandoverDay returns the calendar day of the first daily hand-over at
// or after start.
func firstHandoverDay(start time.Time, h, m int, loc *time.Location) int64 {
	d := lastHandoverDay(start, h, m, loc)
	if handoverOn(d, h, m, loc).Before(start) {
		d++
	}
	return d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func mod(a, n int64) int64 {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}

// rotationAt returns the rotation's user at t and the shift [start, end)
// containing t, ignoring overrides. Before the first hand-over the rotation
// runs backwards, so someone is always on call.
func (s *Schedule) rotationAt(t time.Time, loc *time.Location, h, m int) (user string, start, end time.Time) {
	n := int64(len(s.Users))
	switch s.Rotation {
	case RotationWeekly:
		// The first hand-over is the first one on Start's local weekday at
		// or after Start.
		ls := s.Start.In(loc)
		startDay := civil(ls.Year(), ls.Month(), ls.Day())
		first := startDay
		if handoverOn(startDay, h, m, loc).Before(s.Start) {
			first += 7
		}
		k := floorDiv(lastHandoverDay(t, h, m, loc)-first, 7)
		d := first + 7*k
		return s.Users[mod(k, n)], handoverOn(d, h, m, loc), handoverOn(d+7, h, m, loc)
	case RotationCustom:
		first := handoverOn(firstHandoverDay(s.Start, h, m, loc), h, m, loc)
		length := s.Length.D()
		k := floorDiv(int64(t.Sub(first)), int64(length))
		start = first.Add(time.Duration(k) * length)
		return s.Users[mod(k, n)], start, start.Add(length)
	default: // daily
		d := lastHandoverDay(t, h, m, loc)
		k := d - firstHandoverDay(s.Start, h, m, loc)
		return s.Users[mod(k, n)], handoverOn(d, h, m, loc), handoverOn(d+1, h, m, loc)
	}
}

// at returns who is on call at t, until when that stays so, and whether an
// override is the reason. When overrides overlap, the one listed last wins
// (it is the most recent decision), so a short override nested inside a
// long one takes effect and the long one resumes after it.
func (s *Schedule) at(t time.Time) (user string, until time.Time, override bool) {
	loc, h, m, ok := s.params()
	if !ok {
		return "", time.Time{}, false
	}
	win := -1
	for i := len(s.Overrides) - 1; i >= 0; i-- {
		o := s.Overrides[i]
		if !t.Before(o.Start) && t.Before(o.End) {
			win = i
			break
		}
	}
	if win >= 0 {
		user, until, override = s.Overrides[win].User, s.Overrides[win].End, true
	} else {
		user, _, until = s.rotationAt(t, loc, h, m)
	}
	// A later-listed override that starts before this stretch ends cuts it
	// short (when no override is active, every override outranks the
	// rotation).
	for i := win + 1; i < len(s.Overrides); i++ {
		o := s.Overrides[i]
		if o.Start.After(t) && o.Start.Before(until) && o.End.After(o.Start) {
			until = o.Start
		}
	}
	return user, until, override
}

// OnCall returns who is on call at t (an override first, else the rotation)
// and when that stretch ends: the shift's hand-over, the override's end, or
// the start of an override that takes over earlier. It returns "" for a
// schedule without users or with an unparseable zone or hand-over.
func (s *Schedule) OnCall(t time.Time) (user string, until time.Time) {
	user, until, _ = s.at(t)
	return user, until
}

// Shifts lists the shifts covering [from, to), overrides applied, for
// display: the first shift starts at from and the last ends at to. At most
// MaxShifts are returned.
func (s *Schedule) Shifts(from, to time.Time) []Shift {
	var out []Shift
	for t := from; t.Before(to) && len(out) < MaxShifts; {
		user, until, over := s.at(t)
		if user == "" || !until.After(t) {
			break
		}
		end := until
		if end.After(to) {
			end = to
		}
		out = append(out, Shift{User: user, Start: t, End: end, Override: over})
		t = until
	}
	return out
}

// OnCallEntry is one row of the "who is on call now" answer.
type OnCallEntry struct {
	Team     string    `json:"team"`
	Tier     string    `json:"tier"`
	Schedule string    `json:"schedule"`
	User     string    `json:"user"`
	Until    time.Time `json:"until"`
	// Override is true when an override put User on call.
	Override bool `json:"override"`
}

// WhoIsOnCall answers GET /api/v1/oncall: for each schedule, who is on call
// at t and until when, sorted by team, tier and schedule name.
func WhoIsOnCall(schedules []Schedule, t time.Time) []OnCallEntry {
	out := make([]OnCallEntry, 0, len(schedules))
	for i := range schedules {
		s := &schedules[i]
		user, until, over := s.at(t)
		out = append(out, OnCallEntry{Team: s.Team, Tier: s.Tier, Schedule: s.Name, User: user, Until: until, Override: over})
	}
	sortEntries(out)
	return out
}
