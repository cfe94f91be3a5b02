package rpo

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// WriteTable prints the images for people, one row each.
func WriteTable(w io.Writer, images []Image, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tSITE\tIMAGE\tROLE\tMIRROR\tLAST COPY\tAGE\tRPO\tSCHEDULE\tLEVEL\tREASON")
	for _, img := range images {
		last, age, sched := "never", "-", "none"
		if img.LastCopy != nil {
			last = img.LastCopy.UTC().Format(time.RFC3339)
			age = img.Age.Duration().Round(time.Second).String()
		}
		if img.Schedule > 0 {
			sched = "every " + rbd.FormatInterval(img.Schedule.Duration())
			if img.NextSnapshot != nil {
				sched += ", next " + img.NextSnapshot.UTC().Format(time.TimeOnly)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(img.App), orDash(img.Site), img.Image, img.Role, img.Mirror, last, age,
			rbd.FormatInterval(img.RPO.Duration()), sched, img.Level, img.Reason)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteJSON prints the images as a JSON document for scripts.
func WriteJSON(w io.Writer, images []Image) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Images []Image `json:"images"`
	}{images})
}

// Levels lists every level, for the level metric's label.
var Levels = []Level{OK, Warning, Critical, Unprotected, Unscheduled, Broken}

// WritePrometheus prints the images in Prometheus' text exposition format,
// named after Ramen's metrics so that its alert rules read the same:
// VolumeSynchronizationDelay is
// (time() - rbd_dr_last_sync_timestamp_seconds) > 2 * rbd_dr_policy_schedule_interval_seconds.
func WritePrometheus(w io.Writer, images []Image) error {
	labels := []string{"app", "namespace", "site", "image"}
	gauge := func(name, help string, extra ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rbd_dr_" + name, Help: help}, append(labels, extra...))
	}
	var (
		lastSync  = gauge("last_sync_timestamp_seconds", "When the primary took the newest snapshot whose copy on the other site is complete (unix seconds); absent when none is.")
		age       = gauge("data_age_seconds", "How old the copy on the other site is: the data a failover would give; absent when there is none.")
		interval  = gauge("policy_schedule_interval_seconds", "The recovery point promised to the namespace (the settings' rpo).")
		schedule  = gauge("schedule_interval_seconds", "The interval of the mirror snapshot schedule covering the image on this site; 0 when none does.")
		warning   = gauge("rpo_warning_threshold_seconds", "The data age above which the copy is late (2x the promised interval).")
		critical  = gauge("rpo_critical_threshold_seconds", "The data age above which the rpo-check fails (3x the promised interval).")
		primary   = gauge("image_primary", "1 when the image is primary on this site.")
		protected = gauge("workload_protection_status", "1 when a complete copy exists on the other site and mirroring is healthy.")
		level     = gauge("rpo_level", "1 for the image's level against its promise.", "level")
	)
	reg := prometheus.NewPedanticRegistry()
	for _, c := range []prometheus.Collector{lastSync, age, interval, schedule, warning, critical, primary, protected, level} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering the metrics: %w", err)
		}
	}
	for _, img := range images {
		l := prometheus.Labels{"app": img.App, "namespace": img.Namespace, "site": img.Site, "image": img.Image}
		if img.LastCopy != nil {
			lastSync.With(l).Set(float64(img.LastCopy.Unix()))
			age.With(l).Set(float64(img.Age))
		}
		interval.With(l).Set(float64(img.RPO))
		schedule.With(l).Set(float64(img.Schedule))
		warning.With(l).Set(WarningFactor * float64(img.RPO))
		critical.With(l).Set(CriticalFactor * float64(img.RPO))
		primary.With(l).Set(boolGauge(img.Role == "primary"))
		protected.With(l).Set(boolGauge(img.LastCopy != nil && img.Level != Broken && img.Level != Unprotected))
		for _, lv := range Levels {
			ll := prometheus.Labels{"level": string(lv)}
			for k, v := range l {
				ll[k] = v
			}
			level.With(ll).Set(boolGauge(img.Level == lv))
		}
	}
	families, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gathering the metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("writing the metrics: %w", err)
		}
	}
	return nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
