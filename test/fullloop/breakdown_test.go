package fullloop

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// span is when a phase of a relocation began and ended, after the commit.
type span struct{ from, to time.Duration }

func (s span) String() string {
	if s.to < s.from {
		return fmt.Sprintf("+%.0fs..(running)", s.from.Seconds())
	}
	return fmt.Sprintf("+%.0f..+%.0fs", s.from.Seconds(), s.to.Seconds())
}

// breakdown says where a relocation's time went, from the commit to ready:
// when Argo CD began syncing the Applications (it saw the commit), each
// hook step's span on its site (its Jobs' own start and completion times,
// whole seconds), and the rest, the apps starting. Its line reads
// `time-breakdown <what>: sync +a..+bs | quiesce@site-a ... | ready +Ns`.
func (l *loop) breakdown(ctx context.Context, t *testing.T, what string, apps []*app, applications []string, commit, ready time.Time) string {
	t.Helper()
	since := func(at time.Time) time.Duration { return at.Sub(commit.Truncate(time.Second)) }
	parts := []string{}
	var sync span
	var retried []string
	for i, name := range applications {
		a, err := l.application(ctx, name)
		if err != nil || a.Status.OperationState == nil {
			continue
		}
		op := a.Status.OperationState
		// A retried sync ran its PreSync hooks again from the start.
		if op.RetryCount > 0 {
			retried = append(retried, fmt.Sprintf("%s x%d", name, op.RetryCount))
		}
		start := since(op.StartedAt.Time)
		if i == 0 || start < sync.from {
			sync.from = start
		}
		if op.FinishedAt != nil && since(op.FinishedAt.Time) > sync.to {
			sync.to = since(op.FinishedAt.Time)
		}
	}
	parts = append(parts, "sync "+sync.String())
	if len(retried) > 0 {
		parts = append(parts, "retried "+strings.Join(retried, ", "))
	}
	names := map[string]bool{}
	var nss []string
	for _, a := range apps {
		names[a.policy.Name] = true
		for _, ns := range namespaces(a.render(t, a.sites()[0], "active")) {
			if !slices.Contains(nss, ns) {
				nss = append(nss, ns)
			}
		}
	}
	type key struct{ step, site string }
	steps := map[key]*span{}
	var order []key
	for _, site := range l.app.sites() {
		if l.dead[site] {
			continue
		}
		for _, ns := range nss {
			list, err := l.sites[site].client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: stepLabel})
			if err != nil {
				t.Fatal(err)
			}
			for _, j := range list.Items {
				if !names[j.Labels["rbd-dr.io/app"]] || j.Status.StartTime == nil || j.Status.StartTime.Time.Before(commit.Truncate(time.Second)) {
					continue
				}
				k := key{j.Labels[stepLabel], site}
				s := steps[k]
				if s == nil {
					s = &span{from: since(j.Status.StartTime.Time)}
					steps[k] = s
					order = append(order, k)
				}
				s.from = min(s.from, since(j.Status.StartTime.Time))
				if j.Status.CompletionTime != nil {
					s.to = max(s.to, since(j.Status.CompletionTime.Time))
				}
			}
		}
	}
	slices.SortFunc(order, func(a, b key) int { return int(steps[a].from - steps[b].from) })
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s@%s %s", k.step, k.site, steps[k]))
	}
	for _, site := range l.app.sites() {
		if !l.dead[site] {
			parts = append(parts, l.podStarts(ctx, t, site, nss, commit.Truncate(time.Second))...)
		}
	}
	parts = append(parts, fmt.Sprintf("ready +%.1fs", ready.Sub(commit).Seconds()))
	line := fmt.Sprintf("time-breakdown %s: %s", what, strings.Join(parts, " | "))
	fmt.Println(line)
	return line
}

// podStarts says how the app's pods on site (in namespaces nss, made after
// since, hook and rpo-check pods left out) started: when they were made
// (the workload applied), when the node started them, and when they were
// Ready, as spans after since, with their number.
func (l *loop) podStarts(ctx context.Context, t *testing.T, site string, nss []string, since time.Time) []string {
	t.Helper()
	var made, started, ready *span
	n := 0
	widen := func(s **span, at time.Time) {
		d := at.Sub(since)
		if *s == nil {
			*s = &span{from: d, to: d}
		}
		(*s).from, (*s).to = min((*s).from, d), max((*s).to, d)
	}
	for _, ns := range nss {
		list, err := l.sites[site].client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "!" + stepLabel})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Items {
			if p.CreationTimestamp.Time.Before(since) {
				continue
			}
			n++
			widen(&made, p.CreationTimestamp.Time)
			if p.Status.StartTime != nil {
				widen(&started, p.Status.StartTime.Time)
			}
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					widen(&ready, c.LastTransitionTime.Time)
				}
			}
		}
	}
	if n == 0 {
		return nil
	}
	out := fmt.Sprintf("pods@%s (%d) made %s", site, n, made)
	if started != nil {
		out += fmt.Sprintf(", started %s", started)
	}
	if ready != nil {
		out += fmt.Sprintf(", ready %s", ready)
	}
	return []string{out}
}

// bootstrapBreakdown says where an app-of-apps bootstrap's time went, after
// begin: each site's sync, when the kube-controller-manager bound the app's
// claims there (its last status write of each claim), and when Argo CD last
// changed the site's health and last reconciled it. A gap between the
// claims bound and the health is Argo CD not looking again.
func (l *loop) bootstrapBreakdown(ctx context.Context, t *testing.T, begin time.Time, children map[string]string) {
	t.Helper()
	since := func(at time.Time) time.Duration { return at.Sub(begin.Truncate(time.Second)) }
	nss := namespaces(l.app.render(t, l.app.sites()[0], "active"))
	var parts []string
	for _, site := range l.app.sites() {
		a, err := l.application(ctx, children[site])
		if err != nil {
			t.Fatal(err)
		}
		if op := a.Status.OperationState; op != nil && op.FinishedAt != nil {
			parts = append(parts, fmt.Sprintf("sync@%s %s", site, span{since(op.StartedAt.Time), since(op.FinishedAt.Time)}))
		}
		var bound *span
		n := 0
		for _, ns := range nss {
			list, err := l.sites[site].client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list.Items {
				for _, f := range c.ManagedFields {
					if f.Manager != "kube-controller-manager" || f.Subresource != "status" || f.Time == nil {
						continue
					}
					n++
					d := since(f.Time.Time)
					if bound == nil {
						bound = &span{d, d}
					}
					bound.from, bound.to = min(bound.from, d), max(bound.to, d)
				}
			}
		}
		if bound != nil {
			parts = append(parts, fmt.Sprintf("claims@%s (%d) bound %s", site, n, bound))
		}
		if h := a.Status.Health.LastTransitionTime; h != nil {
			parts = append(parts, fmt.Sprintf("%s@%s +%.0fs", strings.ToLower(string(a.Status.Health.Status)), site, since(h.Time).Seconds()))
		}
		if r := a.Status.ReconciledAt; r != nil {
			parts = append(parts, fmt.Sprintf("reconciled@%s +%.0fs", site, since(r.Time).Seconds()))
		}
	}
	fmt.Printf("time-breakdown bootstrap %s: %s\n", l.app.name(), strings.Join(parts, " | "))
}

// stepTook reads the hook's last log line, `msg="step finished" ...
// took=812ms` (cmd/cmp runStep): the step's own time, without its Job's and
// pod's start.
var stepTook = regexp.MustCompile(`msg="step finished" .*result=ok .*took=([0-9.]+[a-zµ]+)`)

// hookJobs selects the app's hook step Jobs (not its rpo-check's).
func hookJobs(a *app) string {
	return stepLabel + "," + stepLabel + "!=rpo-check,rbd-dr.io/app=" + a.policy.Name
}

// appHookJobs are app a's sync-hook Jobs on site (rpo-check's left out), in
// every namespace the app deploys to.
func (l *loop) appHookJobs(ctx context.Context, t *testing.T, a *app, site string) []batchv1.Job {
	t.Helper()
	var out []batchv1.Job
	for _, ns := range namespaces(a.render(t, site, "active")) {
		list, err := l.sites[site].client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: hookJobs(a)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, list.Items...)
	}
	return out
}

// hookTime is the sum of the step times of every sync hook (rpo-check
// left out) that app a ran on any site since the given time, and the steps
// summed, as "promote@site-b 0.61s".
func (l *loop) hookTime(ctx context.Context, t *testing.T, a *app, since time.Time) (time.Duration, []string) {
	t.Helper()
	var total time.Duration
	var parts []string
	for _, site := range a.sites() {
		if l.dead[site] {
			continue
		}
		jobs := l.appHookJobs(ctx, t, a, site)
		for i := range jobs {
			j := &jobs[i]
			step := j.Labels[stepLabel]
			if j.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
				continue
			}
			m := stepTook.FindStringSubmatch(l.jobLog(ctx, site, j))
			if m == nil {
				t.Errorf("%s@%s (Job %s): no step-finished line in its log", step, site, j.Name)
				continue
			}
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Errorf("%s@%s: %v", step, site, err)
				continue
			}
			total += d
			parts = append(parts, fmt.Sprintf("%s@%s %.2fs", step, site, d.Seconds()))
		}
	}
	slices.Sort(parts)
	return total, parts
}

// fleetAppBreakdown prints, after a fleet move, a line per app: each site's
// sync (its last operation: a start after the app's hooks ended is a sync
// Argo CD ran again) and each hook step's Job, as spans after the commit in
// the order they began (`time-breakdown-app <app>: ...`). The fleet's own
// line gives the spans over all apps; these say which app finished last and
// what held it.
func (l *loop) fleetAppBreakdown(ctx context.Context, t *testing.T, commit time.Time) {
	t.Helper()
	since := func(at time.Time) time.Duration { return at.Sub(commit.Truncate(time.Second)) }
	type part struct {
		from time.Duration
		text string
	}
	spanOf := func(start time.Time, end *metav1.Time) span {
		s := span{from: since(start), to: -1}
		if end != nil {
			s.to = since(end.Time)
		}
		return s
	}
	for _, a := range l.fleet {
		var parts []part
		for _, site := range a.sites() {
			if argoApp, err := l.application(ctx, a.name()+"-"+site); err == nil && argoApp.Status.OperationState != nil {
				op := argoApp.Status.OperationState
				s := spanOf(op.StartedAt.Time, op.FinishedAt)
				parts = append(parts, part{s.from, "sync@" + site + " " + s.String()})
			}
			for _, j := range l.appHookJobs(ctx, t, a, site) {
				if j.Status.StartTime == nil || j.Status.StartTime.Time.Before(commit.Truncate(time.Second)) {
					continue
				}
				s := spanOf(j.Status.StartTime.Time, j.Status.CompletionTime)
				parts = append(parts, part{s.from, fmt.Sprintf("%s@%s %s", j.Labels[stepLabel], site, s)})
			}
		}
		slices.SortStableFunc(parts, func(x, y part) int { return int(x.from - y.from) })
		texts := make([]string, len(parts))
		for i, p := range parts {
			texts[i] = p.text
		}
		fmt.Printf("time-breakdown-app %s: %s\n", a.name(), strings.Join(texts, " | "))
	}
}
