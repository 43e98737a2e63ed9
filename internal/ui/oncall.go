package ui

import (
	"net/http"
	"time"

	"github.com/nocsoc/nocsoc/internal/oncall"
)

// shiftDays is how far ahead the On-call page lists shifts.
const shiftDays = 7

// ScheduleView is one schedule with its coming shifts.
type ScheduleView struct {
	oncall.Schedule
	Shifts []oncall.Shift
}

// OnCallData is the On-call page's data.
type OnCallData struct {
	Running   bool
	Now       []oncall.OnCallEntry
	Schedules []ScheduleView
}

func (u *UI) oncallPage(w http.ResponseWriter, r *http.Request) error {
	d := OnCallData{Running: u.ext.resp != nil}
	if u.ext.resp != nil {
		now := u.now()
		scs := u.ext.resp.Schedules(r.Context())
		d.Now = oncall.WhoIsOnCall(scs, now)
		for i := range scs {
			d.Schedules = append(d.Schedules, ScheduleView{Schedule: scs[i], Shifts: scs[i].Shifts(now, now.Add(shiftDays*24*time.Hour))})
		}
	}
	return u.render(w, r, http.StatusOK, "oncall", Page{Title: "On-call", Nav: "oncall", Data: d})
}
