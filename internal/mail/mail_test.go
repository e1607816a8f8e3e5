package mail

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRender_EveryKind(t *testing.T) {
	r, err := NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		m, err := r.Render(k, Data{
			Product: "gatehouse", To: "alice@example.com", Link: "https://auth.example.com/x?token=abc&y=<1>",
			Expires: "1 hour", ResetURL: "https://auth.example.com/forgot-password",
		})
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if m.Subject == "" || strings.Contains(m.Subject, "\n") || !strings.Contains(m.Text, "alice@example.com") {
			t.Errorf("%s: subject %q text %q", k, m.Subject, m.Text)
		}
		if strings.Contains(m.HTML, "<1>") {
			t.Errorf("%s: HTML does not escape data", k)
		}
		if !strings.Contains(m.HTML, "gatehouse") {
			t.Errorf("%s: no product name in HTML", k)
		}
	}
	if _, err := r.Render("nope", Data{}); err == nil {
		t.Fatal("unknown kind rendered")
	}
}

func TestFileSender_WritesEML(t *testing.T) {
	dir := t.TempDir()
	s := FileSender{Dir: filepath.Join(dir, "mail"), From: "gatehouse <no-reply@example.com>"}
	m := Message{ID: "job-42@gatehouse", To: "bob@example.com", Subject: "Hi", Text: "plain body", HTML: "<p>html body</p>"}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), m); err != nil { // a retry overwrites, never duplicates
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "mail", "*.eml"))
	if len(files) != 1 {
		t.Fatalf("files: %v", files)
	}
	b, _ := os.ReadFile(files[0])
	for _, want := range []string{"To: <bob@example.com>", "Subject: Hi", "plain body", "html body", "multipart/alternative"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("eml lacks %q:\n%s", want, b)
		}
	}
}
