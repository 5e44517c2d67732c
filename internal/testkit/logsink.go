package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
)

// LogLine is one line of a JSON log, and when it was written.
type LogLine struct {
	At     time.Time
	Fields map[string]any // the line's object; a line that is not JSON has it under "unparsed"
}

// Str returns field k when it is a string, and "" otherwise.
func (l LogLine) Str(k string) string { s, _ := l.Fields[k].(string); return s }

// MsgIs matches the lines whose msg is msg.
func MsgIs(msg string) func(LogLine) bool {
	return func(l LogLine) bool { return l.Str("msg") == msg }
}

// JobMsg matches the lines whose msg is msg about job id.
func JobMsg(msg, id string) func(LogLine) bool {
	return func(l LogLine) bool { return l.Str("msg") == msg && l.Str("job") == id }
}

// LogSink collects a JSON log, one object a line, as reportd writes it, and lets a test wait for a
// line.
type LogSink struct {
	mu      sync.Mutex
	partial []byte
	lines   []LogLine
	raw     bytes.Buffer
	changed chan struct{} // closed, and replaced, whenever a line arrives
}

// NewLogSink returns an empty LogSink.
func NewLogSink() *LogSink { return &LogSink{changed: make(chan struct{})} }

func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.raw.Write(p)
	s.partial = append(s.partial, p...)
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		var f map[string]any
		if err := json.Unmarshal(s.partial[:i], &f); err != nil {
			f = map[string]any{"unparsed": string(s.partial[:i])}
		}
		s.lines = append(s.lines, LogLine{At: now, Fields: f})
		s.partial = s.partial[i+1:]
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// String returns the raw log so far.
func (s *LogSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

// Find returns the first line that match accepts.
func (s *LogSink) Find(match func(LogLine) bool) (LogLine, bool) {
	l, ok, _ := s.find(match)
	return l, ok
}

func (s *LogSink) find(match func(LogLine) bool) (LogLine, bool, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if match(l) {
			return l, true, nil
		}
	}
	return LogLine{}, false, s.changed
}

// All returns the lines that match accepts.
func (s *LogSink) All(match func(LogLine) bool) []LogLine {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LogLine
	for _, l := range s.lines {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// WaitFor returns the first line that match accepts, waiting up to timeout for it, or until stop (the
// writer's end; nil for none) is closed and then 100 ms more for the last lines on their way.
func (s *LogSink) WaitFor(timeout time.Duration, stop <-chan struct{}, match func(LogLine) bool) (LogLine, bool) {
	deadline := time.After(timeout)
	for {
		l, ok, changed := s.find(match)
		if ok {
			return l, true
		}
		select {
		case <-changed:
		case <-stop:
			stop = nil
			deadline = time.After(100 * time.Millisecond)
		case <-deadline:
			return LogLine{}, false
		}
	}
}

// Tail returns the last n lines of the raw log.
func (s *LogSink) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(s.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
