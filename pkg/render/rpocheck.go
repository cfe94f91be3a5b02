package render

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

// maxCronJobName: a CronJob's name must leave room for its Jobs' suffix.
const maxCronJobName = 52

// rpoCheck is the CronJob that checks, on each site and at the promised
// interval, how old the other site's copy of every image is, with the
// namespace's own Ceph user: its Job fails when a copy is older than 3x the
// interval, was never made, or mirroring is broken, and Argo CD then shows
// the CronJob, and the app, Degraded (v3.2+ by itself; v2.14 with
// manifests/argocd-cm-cronjob-health.yaml). It is one of the app's own
// objects, not a hook, and never suspended on the passive site; only its
// status changes, which no Argo CD version counts as a diff.
func rpoCheck(pl *placement) (Object, error) {
	p := pl.policy
	req := cephRequest(pl)
	req.Step, req.RPO = hookcmd.RPOCheck, pl.tenant.Interval
	req.Timeout = min(pl.tenant.Interval-10*time.Second, 2*time.Minute)
	name := objectName(p.Name, string(hookcmd.RPOCheck))
	if len(name) > maxCronJobName {
		name = shortenTo(name, name, maxCronJobName)
	}
	noRetry, deadline := int32(0), int64((req.Timeout + 30*time.Second).Seconds())
	startBy, keep := int64(min(pl.tenant.Interval, 5*time.Minute).Seconds()), int32(1)
	l := labels(p.Name, string(hookcmd.RPOCheck))
	return toObject(&cronJob{
		typeMeta: typeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		Metadata: objectMeta{Name: name, Namespace: pl.namespace, Labels: l},
		Spec: cronJobSpec{
			Schedule:                   cronEvery(pl.tenant.Interval, pl.namespace+"/"+p.Name),
			ConcurrencyPolicy:          "Forbid",
			StartingDeadlineSeconds:    &startBy,
			SuccessfulJobsHistoryLimit: &keep,
			FailedJobsHistoryLimit:     &keep,
			JobTemplate: jobTemplateSpec{
				Metadata: objectMeta{Labels: l},
				Spec: jobSpec{
					BackoffLimit:          &noRetry,
					ActiveDeadlineSeconds: &deadline,
					Template:              podTemplate{Metadata: objectMeta{Labels: l}, Spec: cephPod(pl, req)},
				},
			},
		},
	})
}

// cronEvery is a cron schedule that runs at least every interval (at most
// hourly): every k minutes for the largest k that divides an hour and is at
// most the interval, so runs never drift apart. Apps start at an offset
// hashed from key, so that ten teams' checks do not hit the monitors in
// the same second.
func cronEvery(interval time.Duration, key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	minutes := int(interval / time.Minute)
	if minutes >= 60 {
		return fmt.Sprintf("%d * * * *", h.Sum32()%60)
	}
	k := 1
	for d := 1; d <= minutes; d++ {
		if 60%d == 0 {
			k = d
		}
	}
	if k == 1 {
		return "* * * * *"
	}
	return fmt.Sprintf("%d-59/%d * * * *", h.Sum32()%uint32(k), k)
}
