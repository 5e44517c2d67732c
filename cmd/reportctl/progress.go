package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/reportd/reportd/gen"
)

// progress shows how a job is faring on stderr: a bar that redraws itself on a terminal, or a line
// whenever the status or the whole percentage changes anywhere else (a log, a pipe).
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time

	mu    sync.Mutex
	state gen.JobState
	share float64
	last  string // the last plain line printed

	quit, done chan struct{} // the terminal's redraw loop
}

// barWidth is the bar's length in cells.
const barWidth = 30

func newProgress(w io.Writer, tty bool) *progress {
	p := &progress{w: w, tty: tty, start: time.Now()}
	if tty {
		p.quit, p.done = make(chan struct{}), make(chan struct{})
		go p.redraw()
	}
	return p
}

// update records a status read; it is Wait's onProgress.
func (p *progress) update(s gen.JobStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.state, p.share = s.Status, s.Progress
	p.show()
}

// stop ends the display, showing the job done if it is.
func (p *progress) stop(done bool) {
	if p.tty {
		close(p.quit)
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done {
		p.state, p.share = gen.Done, 1
	}
	p.show()
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// redraw keeps the bar's clock running between status reads, which may be many seconds apart.
func (p *progress) redraw() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			p.show()
			p.mu.Unlock()
		case <-p.quit:
			return
		}
	}
}

// show draws the bar, or prints a line if it says something new. p.mu is held.
func (p *progress) show() {
	elapsed := formatDuration(time.Since(p.start))
	if p.tty {
		filled := min(max(int(p.share*barWidth), 0), barWidth)
		bar := strings.Repeat("#", filled) + strings.Repeat(".", barWidth-filled)
		fmt.Fprintf(p.w, "\r\x1b[K[%s] %3.0f%%  %-8s %s", bar, p.share*100, p.state, elapsed)
		return
	}
	line := fmt.Sprintf("%s %.0f%%", p.state, p.share*100)
	if p.state == "" || line == p.last {
		return
	}
	p.last = line
	fmt.Fprintf(p.w, "%s after %s\n", line, elapsed)
}
