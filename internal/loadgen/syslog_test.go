package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSyslogGenFraming(t *testing.T) {
	at := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		framing string
		check   func(t *testing.T, out []byte) int
	}{
		{FramingOctet, func(t *testing.T, out []byte) int {
			n := 0
			for len(out) > 0 {
				sp := bytes.IndexByte(out, ' ')
				size, err := strconv.Atoi(string(out[:sp]))
				if err != nil {
					t.Fatalf("frame %d: bad header %q", n, out[:min(len(out), 20)])
				}
				msg := out[sp+1 : sp+1+size]
				if !bytes.HasPrefix(msg, []byte("<")) || !bytes.Contains(msg, []byte(">1 2026-11-27T07:00:00.000Z ")) {
					t.Fatalf("frame %d is not RFC 5424: %q", n, msg)
				}
				out = out[sp+1+size:]
				n++
			}
			return n
		}},
		{FramingNewline, func(t *testing.T, out []byte) int {
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			for i, l := range lines {
				if !strings.HasPrefix(l, "<") || !strings.Contains(l, ">Nov 27 07:00:00 ") {
					t.Fatalf("line %d is not RFC 3164: %q", i, l)
				}
			}
			return len(lines)
		}},
	} {
		t.Run(tc.framing, func(t *testing.T) {
			g, err := NewSyslogGen(7, tc.framing)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			for range 5000 {
				out = g.Append(out, at)
			}
			if n := tc.check(t, out); n != 5000 {
				t.Fatalf("got %d messages, want 5000", n)
			}
			// Every source the issue names is in the mix.
			for _, want := range []string{"sshd", "Failed password", "Accepted publickey", "sudo", "CRON", "nginx", "\" 404 ", "postfix/", "kernel", "UFW BLOCK", "203.0.113."} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("stream lacks %q", want)
				}
			}
			// Same seed, same stream.
			g2, _ := NewSyslogGen(7, tc.framing)
			var again []byte
			for range 5000 {
				again = g2.Append(again, at)
			}
			if !bytes.Equal(out, again) {
				t.Error("same seed gave a different stream")
			}
		})
	}
}

func TestSyslogOptionsErrors(t *testing.T) {
	ok := SyslogOptions{Addr: "127.0.0.1:5514", Duration: time.Second, Connections: 1, Framing: FramingOctet}
	for _, tc := range []struct {
		flag string
		mod  func(o *SyslogOptions)
	}{
		{"rate", func(o *SyslogOptions) { o.Rate = -1 }},
		{"duration", func(o *SyslogOptions) { o.Duration = 0 }},
		{"connections", func(o *SyslogOptions) { o.Connections = 0 }},
		{"framing", func(o *SyslogOptions) { o.Framing = "lf" }},
		{"addr", func(o *SyslogOptions) { o.Addr = "localhost" }},
		{"receiver", func(o *SyslogOptions) { o.Receiver = "127.0.0.1:0" }},
	} {
		o := ok
		tc.mod(&o)
		_, err := RunSyslog(context.Background(), o)
		var fe *FlagError
		if !errors.As(err, &fe) || fe.Flag != tc.flag {
			t.Errorf("%s: got %v, want an error naming --%s", tc.flag, err, tc.flag)
		}
	}
	if err := WriteSyslogFile(io.Discard, FramingNewline, 1, 0, 10, time.Now()); err == nil {
		t.Error("count 0 accepted")
	}
}

// TestRunSyslogLoopback sends to a real loopback listener and checks that
// what arrives is what was counted, with the marked bursts in it.
func TestRunSyslogLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var lines, marked atomic.Int64
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				readers.Done()
				continue
			}
			go func() {
				defer readers.Done()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					lines.Add(1)
					if strings.Contains(sc.Text(), "2001:db8:ffff:") {
						marked.Add(1)
					}
				}
			}()
		}
	}()
	rep, err := RunSyslog(context.Background(), SyslogOptions{
		Addr: ln.Addr().String(), Rate: 2000, Duration: 300 * time.Millisecond, Connections: 2,
		Framing: FramingNewline, Seed: 3, MarkEvery: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The senders closed their connections: the readers end at EOF.
	readers.Wait()
	if rep.Sent == 0 || rep.Marks == 0 {
		t.Fatalf("report %v: nothing sent", rep)
	}
	if lines.Load() != rep.Sent {
		t.Errorf("received %d lines, report says %d sent", lines.Load(), rep.Sent)
	}
	if marked.Load() != int64(10*rep.Marks) {
		t.Errorf("received %d marked lines, want 10 per burst (%d bursts)", marked.Load(), rep.Marks)
	}
}
