package impl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNegotiate(t *testing.T) {
	t.Parallel()
	type result struct {
		Media string
		OK    bool
	}
	json, csv, none := result{mediaJSON, true}, result{mediaCSV, true}, result{"", false}
	tests := []struct {
		name   string
		accept string
		want   result
	}{
		{name: "absent", accept: "", want: json},
		{name: "blank", accept: "   ", want: json},
		{name: "any", accept: "*/*", want: json},
		{name: "json", accept: "application/json", want: json},
		{name: "csv", accept: "text/csv", want: csv},
		{name: "text-wildcard", accept: "text/*", want: csv},
		{name: "application-wildcard", accept: "application/*", want: json},
		{name: "csv-preferred-by-q", accept: "application/json;q=0.5, text/csv", want: csv},
		{name: "json-preferred-by-q", accept: "text/csv;q=0.4, application/json;q=0.5", want: json},
		{name: "csv-over-wildcard", accept: "text/csv;q=0.9, */*;q=0.1", want: csv},
		{name: "tie-goes-to-json", accept: "text/csv, application/json", want: json},
		{name: "csv-refused", accept: "text/csv;q=0", want: none},
		{name: "all-refused", accept: "*/*;q=0", want: none},
		{name: "specific-refusal-beats-wildcard", accept: "*/*;q=0.1, application/json;q=0", want: csv},
		{name: "specific-beats-type-wildcard", accept: "text/*;q=0, text/csv;q=0.2", want: csv},
		{name: "png", accept: "image/png", want: none},
		{name: "html-browser", accept: "text/html, application/xhtml+xml", want: none},
		{name: "browser-default", accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", want: json},
		{name: "media-parameters-ignored", accept: "application/json; charset=utf-8", want: json},
		{name: "spaces-around-q", accept: "application/json ; q = 0.3 , text/csv ; q = 0.6", want: csv},
		{name: "malformed-q-refuses", accept: "application/json;q=high, text/csv", want: csv},
		{name: "malformed-q-only", accept: "text/csv;q=abc", want: none},
		{name: "q-above-one-refuses", accept: "text/csv;q=2", want: none},
		{name: "negative-q-refuses", accept: "application/json;q=-1", want: none},
		{name: "case-insensitive-type", accept: "TEXT/CSV", want: csv},
		{name: "case-insensitive-q", accept: "Application/JSON;Q=0.5, text/csv;q=0.4", want: json},
		{name: "empty-elements", accept: ", ,text/csv,", want: csv},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			media, ok := negotiate(tt.accept)
			if diff := cmp.Diff(tt.want, result{media, ok}); diff != "" {
				t.Errorf("negotiate(%q) (-want +got):\n%s", tt.accept, diff)
			}
		})
	}
}
