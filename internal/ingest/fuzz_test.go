package ingest

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzOctetFraming feeds arbitrary streams, delivered one byte at a time
// or all at once, to the framer: it must terminate, never return a frame
// longer than max_line, and never invent data.
func FuzzOctetFraming(f *testing.F) {
	f.Add([]byte("5 hello6 world!"), false)
	f.Add([]byte("10 <13>1 - - - - - - x\n3 abc"), true)
	f.Add([]byte("999999999 <1>"), false)
	f.Add([]byte("line one\nline two\r\n\n"), true)
	f.Add([]byte("3 a\x00\xff"), false)
	f.Fuzz(func(t *testing.T, data []byte, byByte bool) {
		const maxLine = 64
		var r io.Reader = bytes.NewReader(data)
		if byByte {
			r = iotest.OneByteReader(r)
		}
		fr := newFramer(r, maxLine)
		total := 0
		for i := 0; ; i++ {
			if i > len(data)+2 {
				t.Fatalf("more frames than input bytes")
			}
			f, err := fr.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(f.data) > maxLine {
				t.Fatalf("frame of %d bytes exceeds max_line", len(f.data))
			}
			if f.origLen > 0 && f.origLen <= maxLine {
				t.Fatalf("origLen %d flagged but within max_line", f.origLen)
			}
			total += len(f.data)
		}
		if total > len(data) {
			t.Fatalf("frames hold %d bytes, input had %d", total, len(data))
		}
	})
}

// FuzzParseSyslog: any message becomes an event that keeps the raw input
// and has a valid UTF-8 message.
func FuzzParseSyslog(f *testing.F) {
	f.Add([]byte("<34>Oct 11 22:14:15 mymachine su: 'su root' failed"))
	f.Add([]byte(`<165>1 2003-10-11T22:14:15.003Z h app - ID47 [x@1 a="b"] msg`))
	f.Add([]byte("<13>1 \xff\x00"))
	f.Add([]byte("Feb 29 12:00:00 h a[x]: y"))
	p := newMsgParser(time.UTC)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		e := p.parse(data, frameInfo{}, now, InputSyslogTCP, "fuzz", "127.0.0.1:1")
		if e.Raw != string(data) {
			t.Fatalf("Raw changed")
		}
		msg, ok := e.Fields["message"].(string)
		if !ok {
			t.Fatalf("no message field")
		}
		if !utf8Valid(msg) || bytes.IndexByte([]byte(msg), 0) >= 0 {
			t.Fatalf("message not clean: %q", msg)
		}
		if e.Time.IsZero() {
			t.Fatalf("zero time")
		}
	})
}
