package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reportd/reportd/gen"
)

// saveReport writes job id's report to file ("" or "-": stdout), as CSV or as JSON: the JSON exactly as
// the service sent it (raw, when the caller has it already; else it is fetched), or, with indent, the
// same indented, its keys still in the service's order.
func saveReport(ctx context.Context, e *env, id string, raw []byte, file string, csv, indent bool) error {
	write := func(w io.Writer) error {
		if csv {
			return e.client.ResultCSV(ctx, id, w)
		}
		if raw == nil {
			var buf bytes.Buffer
			if err := e.client.ResultJSON(ctx, id, &buf); err != nil {
				return err
			}
			raw = buf.Bytes()
		}
		if !indent {
			_, err := w.Write(raw)
			return err
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
			return fmt.Errorf("indent the report: %w", err)
		}
		buf.WriteByte('\n')
		_, err := buf.WriteTo(w)
		return err
	}
	if file == "" || file == "-" {
		return write(e.stdout)
	}
	n, err := writeFile(file, write)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "wrote %s (%d bytes)\n", file, n)
	return nil
}

// writeFile writes name through a temporary file in its directory, renamed into place once whole, so
// that a failed download never leaves a partial file behind. It returns the bytes written.
func writeFile(name string, write func(io.Writer) error) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	cw := &countingWriter{w: tmp}
	err = write(cw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, err
	}
	return cw.n, os.Rename(tmp.Name(), name)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// printSummary prints a report's totals and its largest region and product.
func printSummary(w io.Writer, rep *gen.Report, resultURL string) {
	fmt.Fprintf(w, "report   %s\n", rep.Id)
	fmt.Fprintf(w, "range    %s..%s (%d days)\n", rep.Range.From, rep.Range.To, len(rep.ByDay))
	fmt.Fprintf(w, "orders   %s\n", thousands(rep.Orders))
	fmt.Fprintf(w, "units    %s\n", thousands(rep.Units))
	fmt.Fprintf(w, "revenue  %s\n", money(rep.RevenueCents))
	if len(rep.ByRegion) > 0 {
		top := rep.ByRegion[0]
		fmt.Fprintf(w, "regions  %d, most revenue: %s (%s)\n", len(rep.ByRegion), top.Region, share(top.RevenueCents, rep.RevenueCents))
	}
	if len(rep.ByProduct) > 0 {
		top := rep.ByProduct[0]
		fmt.Fprintf(w, "products %d, most revenue: %s (%s)\n", len(rep.ByProduct), top.Product, share(top.RevenueCents, rep.RevenueCents))
	}
	if resultURL != "" {
		fmt.Fprintf(w, "result   %s\n", resultURL)
	}
}

// thousands formats n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// money formats an amount in cents as units and cents.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%s.%02d", sign, thousands(cents/100), cents%100)
}

func share(part, whole int64) string {
	if whole == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", float64(part)*100/float64(whole))
}
