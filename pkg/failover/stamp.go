package failover

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PromotedAt is the image metadata key where a forced promote records when
// it made the image primary: where the two copies' histories split.
// Snapshot mirroring carries it to the other site with the data, and a
// planned promote continues the peer's history, record included, so each
// copy says when its line of data last split off: the later split holds
// the newer data. Demote reads it to tell a peer that was force-promoted
// after this site (this copy is stale) from a peer that was primary before
// this site was force-promoted (its copy is stale).
const PromotedAt = "rbd-dr.io/promoted-at"

// stamp records that this step just force-promoted the image. A stamp that
// cannot be written fails the step: without it, a later demote could take
// this newer data for the older. A planned promote writes none: its copy
// already carries the record of its line (and an rbd process per image
// less at the end of every relocation).
func (s *imageStep) stamp(ctx context.Context) error {
	now := s.o.Clock.Now().UTC().Format(time.RFC3339Nano)
	err := waitUntil(ctx, s.o, s.deadline, func() (bool, pace, error) {
		err := s.c.SetMeta(ctx, s.img, PromotedAt, now)
		return err == nil, backOff, nil
	})
	if err != nil {
		return fmt.Errorf("promoted, but recording when (rbd image-meta set %s %s %s) failed: %w", s.img, PromotedAt, now, err)
	}
	return nil
}

// errStaleClaim: the peer claims primary with older data than this copy's.
var errStaleClaim = errors.New("the peer's claim to be primary is older than this copy")

// claimNewer checks, before demote gives way to a peer that claims primary
// after a forced failover, that the peer's data really is newer: that it
// was promoted after this copy was. A peer that was primary before this
// site was force-promoted (it came back from the disaster still primary)
// holds the older data, and demoting here would throw away every write
// made here since: that is a failback that skipped the resync. It needs
// the peer reader; without it, git's word decides (activate refuses that
// shortcut). done is false, with why, while a stamp cannot be read.
func (s *imageStep) claimNewer(ctx context.Context, site string) (done bool, why string, err error) {
	if s.peer == nil {
		return true, "", nil
	}
	ownAt, ownSet, err := s.c.Meta(ctx, s.img, PromotedAt)
	if err != nil {
		return false, fmt.Sprintf("reading when this copy was promoted: %v", err), nil
	}
	own, _ := time.Parse(time.RFC3339Nano, ownAt)
	if !ownSet || own.IsZero() {
		return true, "", nil // nothing to set against the peer's claim
	}
	peerAt, peerSet, err := s.peer.HeaderMeta(ctx, s.img, PromotedAt)
	if err != nil {
		return false, fmt.Sprintf("reading when peer %s's copy was promoted: %v", site, err), nil
	}
	if peer, _ := time.Parse(time.RFC3339Nano, peerAt); peerSet && !peer.Before(own) {
		return true, "", nil
	}
	when := "was never force-promoted by argocd-rbd-dr"
	if peerSet {
		when = "was force-promoted at " + peerAt
	}
	return false, "", fmt.Errorf("not demoted: peer %s claims primary, but its copy %s, before this copy was (%s): its data is the older, and demoting here would throw away every write made here since. This is a failback that skipped the resync: set activeSite back to this site (forcePromote: true) so that %s is demoted and resynced from here, then relocate with forcePromote: false (docs/operations.md#failback-after-a-disaster); nothing was changed: %w", site, when, ownAt, site, errStaleClaim)
}
