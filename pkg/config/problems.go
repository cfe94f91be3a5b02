package config

import (
	"fmt"
	"strconv"
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

// quote shows a name so that a look-alike letter cannot pass for another:
// non-ASCII runes are named by their code point.
func quote(s string) string {
	q := strconv.QuoteToASCII(s)
	var odd []string
	for _, r := range s {
		if r > 0x7e {
			odd = append(odd, fmt.Sprintf("%U %q", r, r))
		}
	}
	if len(odd) > 0 {
		q += " (has non-ASCII letters: " + strings.Join(odd, ", ") + ")"
	}
	return q
}
