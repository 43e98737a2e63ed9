package ingest

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	sink := newSink()
	m := start(t, sink, Config{Syslog: []SyslogInput{{Name: "u1", Protocol: "udp", Listen: "127.0.0.1:0"}}}, nil)
	c := dial(t, "udp", m.Addrs()["u1"])
	if _, err := c.Write([]byte("not syslog")); err != nil {
		t.Fatal(err)
	}
	sink.waitN(t, 1)
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	// The input counts a batch once the sink's Write has returned, just
	// after the sink holds it.
	deadline := time.Now().Add(5 * time.Second)
	for m.Stats()["u1"].Received == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mm := range mf.GetMetric() {
			if mm.GetLabel()[0].GetValue() != "u1" {
				t.Errorf("%s: label %v", mf.GetName(), mm.GetLabel())
			}
			got[mf.GetName()] = mm.GetCounter().GetValue() + mm.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"nocsoc_ingest_events_total": 1, "nocsoc_ingest_bytes_total": 10, "nocsoc_ingest_parse_errors_total": 1,
		"nocsoc_ingest_truncated_total": 0, "nocsoc_ingest_udp_dropped_total": 0, "nocsoc_ingest_connections": 0,
		"nocsoc_ingest_errors_total": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}
