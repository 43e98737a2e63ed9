package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os/exec"
	"strconv"
	"time"

	"github.com/nocsoc/nocsoc/internal/agentproto"
)

// journalEntry is one journal record with the cursor after it.
type journalEntry struct {
	rec    agentproto.LogRecord
	cursor string
}

// journalReader follows the journal through `journalctl -o json --follow`,
// starting after a cursor (or with new entries only when there is none),
// and restarts journalctl after the last entry read when it exits.
type journalReader struct {
	ch     chan journalEntry
	cancel context.CancelFunc
	done   chan struct{}
}

func startJournal(ctx context.Context, bin, after string, log *slog.Logger) *journalReader {
	ctx, cancel := context.WithCancel(ctx)
	j := &journalReader{ch: make(chan journalEntry, journalChannelSize), cancel: cancel, done: make(chan struct{})}
	go j.run(ctx, bin, after, log)
	return j
}

// next returns an entry if one is waiting.
func (j *journalReader) next() (journalEntry, bool) {
	select {
	case e := <-j.ch:
		return e, true
	default:
		return journalEntry{}, false
	}
}

func (j *journalReader) stop() {
	j.cancel()
	<-j.done
}

// journalArgs are journalctl's arguments to follow from after a cursor.
func journalArgs(after string) []string {
	args := []string{"--output=json", "--follow", "--no-pager"}
	if after != "" {
		return append(args, "--after-cursor="+after)
	}
	return append(args, "--lines=0")
}

func (j *journalReader) run(ctx context.Context, bin, after string, log *slog.Logger) {
	defer close(j.done)
	backoff := time.Second
	for ctx.Err() == nil {
		cmd := exec.CommandContext(ctx, bin, journalArgs(after)...)
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			log.Warn("journald: cannot start journalctl", "bin", bin, "err", err, "retry_in", backoff)
		} else {
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
			for sc.Scan() {
				e, err := parseJournalEntry(sc.Bytes())
				if err != nil {
					log.Warn("journald: unreadable entry skipped", "err", err)
					continue
				}
				select {
				case j.ch <- e:
					after = e.cursor
				case <-ctx.Done():
					_ = cmd.Wait()
					return
				}
			}
			werr := cmd.Wait()
			if ctx.Err() != nil {
				return
			}
			log.Warn("journald: journalctl exited; restarting", "err", errors.Join(sc.Err(), werr), "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// parseJournalEntry reads one line of `journalctl -o json`. Values are
// strings, except that binary fields come as arrays of byte values.
func parseJournalEntry(line []byte) (journalEntry, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return journalEntry{}, err
	}
	str := func(k string) string {
		raw, ok := m[k]
		if !ok {
			return ""
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var bs []byte
		var ints []int
		if json.Unmarshal(raw, &ints) == nil {
			bs = make([]byte, len(ints))
			for i, v := range ints {
				bs[i] = byte(v)
			}
			return string(bs)
		}
		return ""
	}
	e := journalEntry{cursor: str("__CURSOR")}
	if e.cursor == "" {
		return journalEntry{}, errors.New("entry without __CURSOR")
	}
	r := agentproto.LogRecord{Source: agentproto.LogSourceJournal, Unit: str("_SYSTEMD_UNIT"), Identifier: str("SYSLOG_IDENTIFIER")}
	if r.Identifier == "" {
		r.Identifier = str("_COMM")
	}
	r.Line = str("MESSAGE")
	if len(r.Line) > agentproto.MaxLogLine {
		r.Truncated = len(r.Line)
		r.Line = r.Line[:agentproto.MaxLogLine]
	}
	if us, err := strconv.ParseInt(str("__REALTIME_TIMESTAMP"), 10, 64); err == nil {
		r.Time = time.UnixMicro(us).UTC()
	}
	if pid, err := strconv.Atoi(str("_PID")); err == nil && pid > 0 {
		r.PID = pid
	}
	if p, err := strconv.Atoi(str("PRIORITY")); err == nil && p >= 0 && p <= 7 {
		r.Priority = &p
	}
	e.rec = r
	return e, nil
}
