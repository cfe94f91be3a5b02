package fullloop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
)

// rpoAlert: the passive site's rbd-mirror stops, as a crashed daemon or a
// cut link would. The rpo-check CronJob the plugin renders on each site
// fails once the copies are more than 3x the promised interval old, and
// Argo CD v2.14, with manifests/' CronJob health, shows the active site's
// app Degraded; after the restart the next check passes and it is Healthy
// again. The check never makes an app OutOfSync.
func (l *loop) rpoAlert(ctx context.Context, t *testing.T) {
	active := l.app.policy.ActiveSite
	var passive string
	for _, s := range l.app.sites() {
		if s != active {
			passive = s
		}
	}
	children := l.childNames(t)
	interval, err := time.ParseDuration(suiteRPO)
	if err != nil {
		t.Fatal(err)
	}
	healthy := func(a *v1alpha1.Application) bool {
		return a.Status.Health.Status == "Healthy" && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced
	}
	l.waitApps(ctx, t, 5*time.Minute, "every site Healthy before rbd-mirror stops", healthy, mapValues(children)...)

	stopped := time.Now()
	if _, err := l.lab.Run("stop", l.lab.labOf[passive], "rbd-mirror"); err != nil {
		t.Fatal(err)
	}
	limit := 3*interval + time.Minute
	degraded := func(a *v1alpha1.Application) bool {
		return a.Status.Health.Status == "Degraded" && a.Status.Sync.Status == v1alpha1.SyncStatusCodeSynced && degradedByRPOCheck(a)
	}
	l.waitApps(ctx, t, limit+2*time.Minute, active+"'s app Degraded by its rpo-check, and still Synced", degraded, children[active])
	took := time.Since(stopped)
	fmt.Printf("rpo-alert %.0f %.0f\n", took.Seconds(), limit.Seconds())
	if took > limit {
		t.Errorf("%s's app turned Degraded %s after rbd-mirror stopped on %s; the promise is 3x %s plus a minute (%s)", active, took.Round(time.Second), passive, interval, limit)
	}

	restarted := time.Now()
	if _, err := l.lab.Run("start", l.lab.labOf[passive]); err != nil {
		t.Fatal(err)
	}
	l.waitApps(ctx, t, 5*time.Minute, "every site Healthy again after the restart", healthy, mapValues(children)...)
	fmt.Printf("rpo-clear %.0f\n", time.Since(restarted).Seconds())
}

// degradedByRPOCheck: the app's only unhealthy resource is its rpo-check
// CronJob.
func degradedByRPOCheck(a *v1alpha1.Application) bool {
	found := false
	for _, r := range a.Status.Resources {
		if r.Health == nil || r.Health.Status == "Healthy" || r.Health.Status == "" {
			continue
		}
		if r.Kind != "CronJob" || !strings.HasSuffix(r.Name, "-rbd-dr-rpo-check") {
			return false
		}
		found = r.Health.Status == "Degraded"
	}
	return found
}
