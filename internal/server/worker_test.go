package server

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReportServers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		queues      []string
		concurrency int
		want        []reportServer
	}{
		{[]string{"reports"}, 32, []reportServer{{"reports", 8}, {"reports", 8}, {"reports", 8}, {"reports", 8}}},
		{[]string{"reports"}, 10, []reportServer{{"reports", 3}, {"reports", 3}, {"reports", 2}, {"reports", 2}}},
		{[]string{"reports"}, 2, []reportServer{{"reports", 1}, {"reports", 1}}},
		{[]string{"reports"}, 1, []reportServer{{"reports", 1}}},
		{[]string{"a", "b"}, 32, []reportServer{{"a", 8}, {"a", 8}, {"b", 8}, {"b", 8}}},
		{[]string{"a", "b", "c"}, 32, []reportServer{{"a", 6}, {"a", 5}, {"b", 6}, {"b", 5}, {"c", 6}, {"c", 5}}},
		{[]string{"a", "b", "c", "d", "e"}, 32, []reportServer{{"a", 7}, {"b", 7}, {"c", 7}, {"d", 7}, {"e", 7}}},
		{[]string{"a", "b", "c", "d", "e"}, 2, []reportServer{{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}, {"e", 1}}},
	} {
		if diff := cmp.Diff(tc.want, reportServers(tc.queues, tc.concurrency), cmp.AllowUnexported(reportServer{})); diff != "" {
			t.Errorf("reportServers(%q, %d) (-want +got):\n%s", tc.queues, tc.concurrency, diff)
		}
	}
}
