package main

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	configDocs = "../../docs/configuration.md"
	tableBegin = "<!-- BEGIN table generated from config (cmd/reportd/config.go): go test ./cmd/reportd -run TestConfigDocs -update -->"
	tableEnd   = "<!-- END table generated from config -->"
)

// TestConfigDocs: docs/configuration.md's table of variables is the one config's declaration
// generates; -update rewrites it.
func TestConfigDocs(t *testing.T) {
	b, err := os.ReadFile(configDocs)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(b), tableBegin+"\n")
	table, after, ok2 := strings.Cut(rest, tableEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers %q and %q around its table", configDocs, tableBegin, tableEnd)
	}
	want := configTable(t)
	// -update is testkit's flag for golden files, which this package's tests import.
	if flag.Lookup("update").Value.(flag.Getter).Get().(bool) {
		if err := os.WriteFile(configDocs, []byte(before+tableBegin+"\n"+want+tableEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if diff := cmp.Diff(want, table); diff != "" {
		t.Errorf("%s's table is not what config declares; regenerate it with\n\tgo test ./cmd/reportd -run TestConfigDocs -update\n(-declared +in the docs):\n%s", configDocs, diff)
	}
}

// configTable renders config's declaration as a Markdown table: each field's variable, its default,
// and its doc comment with the bounds its tags set; a variable naming a file that holds the value
// instead follows on a line of its own.
func configTable(t *testing.T) string {
	t.Helper()
	docs := fieldDocs(t)
	var sb strings.Builder
	sb.WriteString("| variable | default | meaning |\n|---|---|---|\n")
	row := func(name, def, meaning string) {
		sb.WriteString("| `" + name + "` | " + def + " | " + strings.ReplaceAll(meaning, "|", `\|`) + " |\n")
	}
	for _, s := range settings {
		doc := docs[s.field.Name]
		if s.name == "" || doc == "" {
			t.Errorf("config.%s has no env tag or no doc comment: every setting needs both", s.field.Name)
		}
		def := s.field.Tag.Get("docDefault")
		if d, ok := s.field.Tag.Lookup("envDefault"); ok && def == "" {
			def = "`" + d + "`"
		}
		switch {
		case s.min != "" && s.max != "":
			doc += " From " + s.min + " to " + s.max + "."
		case s.min != "":
			doc += " At least " + s.min + "."
		case s.max != "":
			doc += " At most " + s.max + "."
		}
		row(s.name, def, doc)
		if s.file != "" {
			file := "A file holding the value of `" + s.name + "`, instead of it; trailing newlines are dropped."
			if s.fileNotEmpty {
				file += " An empty file is refused."
			}
			row(s.file, "", file)
		}
	}
	return sb.String()
}

// fieldDocs reads the doc comments of config's fields from config.go, each on one line.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "config" {
			return true
		}
		for _, field := range ts.Type.(*ast.StructType).Fields.List {
			for _, name := range field.Names {
				docs[name.Name] = strings.Join(strings.Fields(field.Doc.Text()), " ")
			}
		}
		return false
	})
	if len(docs) != reflect.TypeFor[config]().NumField() {
		t.Fatalf("read %d field docs from config.go, want one for each of config's %d fields", len(docs), reflect.TypeFor[config]().NumField())
	}
	return docs
}
