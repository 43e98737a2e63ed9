package ingest

import (
	"strings"
	"testing"
	"time"
)

func TestParseJSONEventsNDJSON(t *testing.T) {
	body := `{"@timestamp":"2026-03-01T10:00:00Z","message":"one","source":{"ip":"203.0.113.7","port":22},"tags":["a"]}
{"message":"two","host":{"name":"web1"}}
{"message": broken
[1,2]

{"message":"five","@timestamp":"yesterday"}
`
	evs, errs := ParseJSONEvents([]byte(body), fixedNow)
	if len(evs) != 3 {
		t.Fatalf("accepted %d events, want 3", len(evs))
	}
	if len(errs) != 2 || errs[0].Line != 3 || errs[1].Line != 4 {
		t.Fatalf("line errors = %+v, want lines 3 and 4", errs)
	}
	if !strings.Contains(errs[0].Err, "invalid JSON") || !strings.Contains(errs[1].Err, "object") {
		t.Errorf("errors = %+v", errs)
	}
	e := evs[0]
	if !e.Time.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) || e.Fields["source.ip"] != "203.0.113.7" ||
		e.Fields["source.port"] != 22.0 || e.Fields["tags"] != "a" || e.Input != InputHTTP || e.Raw == "" {
		t.Errorf("event 1 = %+v", e)
	}
	if evs[1].Host != "web1" || !evs[1].Time.Equal(fixedNow) {
		t.Errorf("event 2 host %q time %v", evs[1].Host, evs[1].Time)
	}
	if !strings.Contains(evs[2].ParseError, "@timestamp") || !evs[2].Time.Equal(fixedNow) {
		t.Errorf("event 3: bad time should be flagged, got %q", evs[2].ParseError)
	}
}

func TestParseJSONEventsArray(t *testing.T) {
	body := "[\n {\"message\":\"a\"},\n \"nope\",\n {\"message\":\"c\"}\n]"
	evs, errs := ParseJSONEvents([]byte(body), fixedNow)
	if len(evs) != 2 || evs[1].Fields["message"] != "c" {
		t.Fatalf("events = %+v", evs)
	}
	if len(errs) != 1 || errs[0].Line != 3 {
		t.Fatalf("errors = %+v, want line 3", errs)
	}
	_, errs = ParseJSONEvents([]byte("[{\"a\":1},\n{\"b\":"), fixedNow)
	if len(errs) != 1 || errs[0].Line != 2 {
		t.Fatalf("truncated array errors = %+v, want line 2", errs)
	}
}

func TestFlattenWindows(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]any
		host string
	}{
		{
			name: "evtx Data array",
			body: `{"Event":{"System":{"Provider":{"@Name":"Microsoft-Windows-Security-Auditing","@Guid":"{5478}"},"EventID":"4624",
				"TimeCreated":{"@SystemTime":"2026-02-01T08:00:00.123Z"},"Channel":"Security","Computer":"DC01","Execution":{"@ProcessID":"612"}},
				"EventData":{"Data":[{"@Name":"TargetUserName","#text":"alice"},{"@Name":"LogonType","#text":"3"},{"@Name":"IpAddress","#text":"10.0.0.5"}]}}}`,
			want: map[string]any{"EventID": 4624.0, "Channel": "Security", "Computer": "DC01", "Provider_Name": "Microsoft-Windows-Security-Auditing",
				"Provider_Guid": "{5478}", "TimeCreated": "2026-02-01T08:00:00.123Z", "Execution_ProcessID": "612",
				"TargetUserName": "alice", "LogonType": "3", "IpAddress": "10.0.0.5"},
			host: "DC01",
		},
		{
			name: "evtx_dump EventData map and #attributes",
			body: `{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Sysmon"}},"EventID":1,"Channel":"Microsoft-Windows-Sysmon/Operational","Computer":"WS7"},
				"EventData":{"Image":"C:\\Windows\\System32\\cmd.exe","CommandLine":"cmd /c whoami"}}}`,
			want: map[string]any{"EventID": 1.0, "Provider_Name": "Microsoft-Windows-Sysmon", "Image": `C:\Windows\System32\cmd.exe`, "CommandLine": "cmd /c whoami"},
			host: "WS7",
		},
		{
			name: "Data as a name map",
			body: `{"Event":{"System":{"EventID":{"#text":"4688","@Qualifiers":""}},"EventData":{"Data":{"NewProcessName":"C:\\x.exe"}}}}`,
			want: map[string]any{"EventID": 4688.0, "NewProcessName": `C:\x.exe`},
		},
		{
			name: "winlogbeat",
			body: `{"@timestamp":"2026-02-01T08:00:00Z","message":"An account failed to log on.","event":{"code":"4625"},
				"winlog":{"event_id":4625,"channel":"Security","computer_name":"SRV2","provider_name":"Microsoft-Windows-Security-Auditing",
				"record_id":99,"event_data":{"TargetUserName":"bob","Status":"0xc000006d"},"logon":{"type":"Network"}}}`,
			want: map[string]any{"EventID": 4625.0, "Channel": "Security", "Computer": "SRV2", "Provider_Name": "Microsoft-Windows-Security-Auditing",
				"EventRecordID": 99.0, "TargetUserName": "bob", "Status": "0xc000006d", "winlog.logon.type": "Network", "event.code": "4625",
				"message": "An account failed to log on."},
			host: "SRV2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, errs := ParseJSONEvents([]byte(strings.ReplaceAll(tt.body, "\n", "")), fixedNow)
			if len(errs) > 0 || len(evs) != 1 {
				t.Fatalf("errs %+v", errs)
			}
			e := evs[0]
			for k, v := range tt.want {
				if e.Fields[k] != v {
					t.Errorf("%s = %#v, want %#v", k, e.Fields[k], v)
				}
			}
			if tt.host != "" && e.Host != tt.host {
				t.Errorf("Host = %q, want %q", e.Host, tt.host)
			}
			for k, v := range e.Fields {
				switch v.(type) {
				case string, float64, bool, nil:
				default:
					t.Errorf("%s has type %T", k, v)
				}
			}
		})
	}
}
