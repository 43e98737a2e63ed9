package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nocsoc/nocsoc/internal/event"
)

// LineError names a line of a JSON events body that was not accepted.
type LineError struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

// ParseJSONEvents reads the body of POST /api/v1/events: NDJSON (one object
// per line) or a JSON array of objects. Each accepted object becomes an
// event (Windows event shapes flattened, see FlattenWindows); each rejected
// one is reported with its 1-based line number, and the others are still
// returned. For an array, the line is where the element starts; a syntax
// error ends the array there.
func ParseJSONEvents(body []byte, now time.Time) ([]event.Event, []LineError) {
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return parseJSONArray(body, now)
	}
	var evs []event.Event
	var errs []LineError
	line := 0
	for len(body) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			l, body = body[:i], body[i+1:]
		} else {
			l, body = body, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		e, err := jsonEvent(l, now, InputHTTP)
		if err != nil {
			errs = append(errs, LineError{Line: line, Err: err.Error()})
			continue
		}
		evs = append(evs, e)
	}
	return evs, errs
}

func parseJSONArray(body []byte, now time.Time) ([]event.Event, []LineError) {
	var evs []event.Event
	var errs []LineError
	lineAt := func(off int64) int { return 1 + bytes.Count(body[:off], []byte{'\n'}) }
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil {
		return nil, []LineError{{Line: 1, Err: "invalid JSON: " + err.Error()}}
	}
	for dec.More() {
		// InputOffset is just past the previous element; this one starts
		// at the first byte after the separator and spaces.
		start := dec.InputOffset()
		off := start + int64(len(body[start:])-len(bytes.TrimLeft(body[start:], " \t\r\n,")))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			errs = append(errs, LineError{Line: lineAt(off), Err: "invalid JSON: " + err.Error()})
			return evs, errs
		}
		e, err := jsonEvent(bytes.TrimSpace(raw), now, InputHTTP)
		if err != nil {
			errs = append(errs, LineError{Line: lineAt(off), Err: err.Error()})
			continue
		}
		evs = append(evs, e)
	}
	if _, err := dec.Token(); err != nil {
		errs = append(errs, LineError{Line: lineAt(dec.InputOffset()), Err: "invalid JSON: " + err.Error()})
	}
	return evs, errs
}

// jsonEvent builds an event from one JSON object.
func jsonEvent(raw []byte, now time.Time, input string) (event.Event, error) {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		if len(raw) > 0 && raw[0] != '{' {
			return event.Event{}, fmt.Errorf("expected a JSON object")
		}
		return event.Event{}, fmt.Errorf("invalid JSON: %v", err)
	}
	if obj == nil {
		return event.Event{}, fmt.Errorf("expected a JSON object, got null")
	}
	f := FlattenWindows(obj)
	e := event.Event{Received: now, Input: input, Raw: string(raw), Fields: f}
	var notes []string
	// Take the event time from the usual places, most specific first.
	for _, k := range []string{"@timestamp", "timestamp", "time", "TimeCreated", "event.created"} {
		v, ok := f[k]
		if !ok {
			continue
		}
		t, err := parseJSONTime(v)
		if err != nil {
			notes = append(notes, fmt.Sprintf("field %q: %v; received time used", k, err))
			break
		}
		e.Time = t
		if k == "@timestamp" {
			delete(f, k) // held by Event.Time
		}
		break
	}
	if e.Time.IsZero() {
		e.Time = now
	}
	for _, k := range []string{"host.name", "Computer", "hostname", "host"} {
		if s, ok := f[k].(string); ok && s != "" {
			e.Host = s
			if k == "host.name" {
				delete(f, k)
			}
			break
		}
	}
	if len(notes) > 0 {
		e.ParseError = strings.Join(notes, "; ")
	}
	return e, nil
}

func parseJSONTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case string:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"} {
			if ts, err := time.Parse(layout, t); err == nil {
				return ts, nil
			}
		}
		return time.Time{}, fmt.Errorf("unrecognised time %q", t)
	case float64:
		// Epoch seconds, or milliseconds when too large for seconds.
		if t > 1e11 {
			return time.UnixMilli(int64(t)), nil
		}
		sec := int64(t)
		return time.Unix(sec, int64((t-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("time must be a string or a number")
}

// FlattenWindows flattens a JSON object into dotted field names with scalar
// values, giving Windows events the field names Sigma rules use:
//
//   - EVTX dumps (python-evtx/xmltodict "@Name"/"#text" and evtx_dump
//     "#attributes"): Event.System.EventID → EventID, Channel, Computer,
//     Provider.@Name → Provider_Name, TimeCreated.@SystemTime → TimeCreated,
//     Execution.@ProcessID → Execution_ProcessID …;
//     Event.EventData.Data[{"@Name":n,"#text":v}] or EventData as a map → n;
//     Event.UserData.<X>.<n> → n.
//   - Winlogbeat: winlog.event_data.<n> → n, winlog.user_data.<n> → n,
//     winlog.event_id → EventID, winlog.channel → Channel,
//     winlog.computer_name → Computer, winlog.provider_name →
//     Provider_Name, winlog.record_id → EventRecordID; other winlog.*
//     and all other fields keep their dotted names.
//
// Numbers stay float64 except EventID, which is a float64 whatever its
// JSON type; arrays of scalars with one element become that element,
// other arrays their JSON text.
func FlattenWindows(obj map[string]any) map[string]any {
	out := make(map[string]any, len(obj)+8)
	for k, v := range obj {
		switch {
		case k == "Event":
			if ev, ok := v.(map[string]any); ok {
				flattenEvtx(ev, out)
				continue
			}
		case k == "winlog":
			if wl, ok := v.(map[string]any); ok {
				flattenWinlog(wl, out)
				continue
			}
		}
		flattenInto(out, k, v)
	}
	if id, ok := out["EventID"]; ok {
		out["EventID"] = numeric(id)
	}
	return out
}

func flattenEvtx(ev map[string]any, out map[string]any) {
	// Data first so that System names win a clash.
	if ed, ok := ev["EventData"]; ok {
		flattenEventData(ed, out)
	}
	if ud, ok := ev["UserData"].(map[string]any); ok {
		for _, inner := range ud {
			if m, ok := inner.(map[string]any); ok {
				for k, v := range m {
					if !strings.HasPrefix(k, "@") && k != "#attributes" {
						flattenInto(out, k, scalar(v))
					}
				}
			}
		}
	}
	if sys, ok := ev["System"].(map[string]any); ok {
		for k, v := range sys {
			switch x := v.(type) {
			case map[string]any:
				if t, ok := x["#text"]; ok {
					out[k] = scalar(t)
				}
				attrs := x
				if a, ok := x["#attributes"].(map[string]any); ok {
					attrs = a
				}
				for ak, av := range attrs {
					if ak == "#text" || ak == "#attributes" {
						continue
					}
					name := k + "_" + strings.TrimPrefix(ak, "@")
					if name == "TimeCreated_SystemTime" {
						name = "TimeCreated"
					}
					out[name] = scalar(av)
				}
			default:
				out[k] = scalar(v)
			}
		}
	}
	for k, v := range ev {
		if k != "System" && k != "EventData" && k != "UserData" && !strings.HasPrefix(k, "@") && k != "#attributes" {
			flattenInto(out, "Event."+k, v)
		}
	}
}

// flattenEventData handles the shapes EventData takes in EVTX dumps.
func flattenEventData(ed any, out map[string]any) {
	m, ok := ed.(map[string]any)
	if !ok {
		return
	}
	for k, v := range m {
		if strings.HasPrefix(k, "@") || k == "#attributes" {
			continue
		}
		if k != "Data" {
			out[k] = scalar(v) // evtx_dump: EventData is the map
			continue
		}
		switch d := v.(type) {
		case []any:
			unnamed := 0
			for _, item := range d {
				if name, val, ok := namedData(item); ok {
					out[name] = val
				} else {
					unnamed++
					out["Data_"+strconv.Itoa(unnamed)] = scalar(item)
				}
			}
		case map[string]any:
			if name, val, ok := namedData(d); ok {
				out[name] = val
				continue
			}
			for dk, dv := range d { // Data as a name → value map
				out[dk] = scalar(dv)
			}
		default:
			out["Data"] = scalar(d)
		}
	}
}

// namedData reads {"@Name": n, "#text": v} (or "#attributes": {"Name": n}).
func namedData(item any) (string, any, bool) {
	m, ok := item.(map[string]any)
	if !ok {
		return "", nil, false
	}
	name, ok := m["@Name"].(string)
	if !ok {
		if a, ok2 := m["#attributes"].(map[string]any); ok2 {
			name, ok = a["Name"].(string)
		}
	}
	if !ok {
		return "", nil, false
	}
	v, has := m["#text"]
	if !has {
		v, has = m["Value"]
	}
	if !has {
		return name, "", true // an empty <Data Name="x"/>
	}
	return name, scalar(v), true
}

func flattenWinlog(wl map[string]any, out map[string]any) {
	for k, v := range wl {
		switch k {
		case "event_data", "user_data":
			if m, ok := v.(map[string]any); ok {
				for dk, dv := range m {
					out[dk] = scalar(dv)
				}
				continue
			}
		case "event_id":
			out["EventID"] = scalar(v)
			continue
		case "channel":
			out["Channel"] = scalar(v)
			continue
		case "computer_name":
			out["Computer"] = scalar(v)
			continue
		case "provider_name":
			out["Provider_Name"] = scalar(v)
			continue
		case "record_id":
			out["EventRecordID"] = scalar(v)
			continue
		}
		flattenInto(out, "winlog."+k, v)
	}
}

// flattenInto writes v under prefix, descending into objects.
func flattenInto(out map[string]any, prefix string, v any) {
	if m, ok := v.(map[string]any); ok {
		if len(m) == 0 {
			return
		}
		for k, vv := range m {
			flattenInto(out, prefix+"."+k, vv)
		}
		return
	}
	out[prefix] = scalar(v)
}

// scalar reduces v to a string, float64, bool or nil.
func scalar(v any) any {
	switch x := v.(type) {
	case nil, string, float64, bool:
		return x
	case []any:
		if len(x) == 1 {
			switch x[0].(type) {
			case nil, string, float64, bool:
				return x[0]
			}
		}
	case map[string]any:
		if t, ok := x["#text"]; ok {
			return scalar(t)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func numeric(v any) any {
	if s, ok := v.(string); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f
		}
	}
	return v
}
