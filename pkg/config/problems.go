package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a policy file, placed by file, line and field.
type Problem struct {
	File  string
	Line  int
	Field string
	// Message says what is wrong and what to do.
	Message string
}

func (p Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one file. Its Error is one line, so the
// CMP path can hand it to Argo CD as is; List gives one per line for people.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	if len(ps) > 1 {
		return fmt.Sprintf("%d problems: %s", len(ps), strings.Join(msgs, "; "))
	}
	return strings.Join(msgs, "; ")
}
