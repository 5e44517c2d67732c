package impl

import (
	"strconv"
	"strings"
)

const (
	mediaJSON = "application/json"
	mediaCSV  = "text/csv"
)

// offered are the result's media types, in the server's order of preference for ties.
var offered = []string{mediaJSON, mediaCSV}

// negotiate picks the media type an Accept header prefers among offered (RFC 9110 section 12.5.1):
// the highest quality wins, a more specific range overrides a wildcard, q=0 refuses. An absent header
// means JSON. It reports false when the header accepts none of them.
func negotiate(accept string) (string, bool) {
	if strings.TrimSpace(accept) == "" {
		return mediaJSON, true
	}
	best, bestQ := "", 0.0
	for _, m := range offered {
		q := quality(accept, m)
		if q > bestQ {
			best, bestQ = m, q
		}
	}
	return best, bestQ > 0
}

// quality is the q-value the Accept header gives media type m, from its most specific matching range.
func quality(accept, m string) float64 {
	typ, _, _ := strings.Cut(m, "/")
	q, specificity := 0.0, -1
	for _, part := range strings.Split(accept, ",") {
		params := strings.Split(part, ";")
		rng := strings.ToLower(strings.TrimSpace(params[0]))
		s := -1
		switch rng {
		case m:
			s = 2
		case typ + "/*":
			s = 1
		case "*/*":
			s = 0
		}
		if s <= specificity {
			continue
		}
		specificity, q = s, 1
		for _, p := range params[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
	}
	return q
}
