package ingest

import "github.com/prometheus/client_golang/prometheus"

// collector exposes the per-input counters; it reads them at scrape time,
// so the Manager keeps no second copy.
type collector struct {
	m                                                      *Manager
	events, bytes, parseErrors, truncated, udpDrops, conns *prometheus.Desc
	errors                                                 *prometheus.Desc
}

// Collector returns a Prometheus collector for the inputs' counters:
// nocsoc_ingest_events_total, nocsoc_ingest_bytes_total,
// nocsoc_ingest_parse_errors_total, nocsoc_ingest_truncated_total,
// nocsoc_ingest_udp_dropped_total, nocsoc_ingest_errors_total (counters)
// and nocsoc_ingest_connections (gauge), each labelled by input name.
func (m *Manager) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"input"}, nil)
	}
	return &collector{
		m:           m,
		events:      d("nocsoc_ingest_events_total", "Events received and handed to the event store."),
		bytes:       d("nocsoc_ingest_bytes_total", "Message bytes received."),
		parseErrors: d("nocsoc_ingest_parse_errors_total", "Events stored with a parse error flag."),
		truncated:   d("nocsoc_ingest_truncated_total", "Messages truncated to max_line."),
		udpDrops:    d("nocsoc_ingest_udp_dropped_total", "UDP datagrams dropped because the parse queue was full."),
		conns:       d("nocsoc_ingest_connections", "Open TCP/TLS connections."),
		errors:      d("nocsoc_ingest_errors_total", "Framing errors, failed handshakes, refused connections and failed sink writes."),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.bytes, c.parseErrors, c.truncated, c.udpDrops, c.conns, c.errors} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.m.Stats() {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.CounterValue, float64(s.Received), name)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), name)
		ch <- prometheus.MustNewConstMetric(c.parseErrors, prometheus.CounterValue, float64(s.ParseErrors), name)
		ch <- prometheus.MustNewConstMetric(c.truncated, prometheus.CounterValue, float64(s.Truncated), name)
		ch <- prometheus.MustNewConstMetric(c.udpDrops, prometheus.CounterValue, float64(s.UDPDrops), name)
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Connections), name)
		ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.Errors), name)
	}
}
