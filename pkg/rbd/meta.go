package rbd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Image metadata (rbd image-meta) lives in the image's header object and
// travels with snapshot mirroring: a copy carries the primary's metadata as
// of the snapshot it copied.

// Meta is `rbd image-meta get IMG KEY`; ok is false when the key is not set.
func (c *Client) Meta(ctx context.Context, img Image, key string) (string, bool, error) {
	out, err := c.run(ctx, 0, "image-meta", "get", img.String(), key)
	var e *CmdError
	if errors.As(err, &e) && e.ExitCode == 2 && strings.Contains(e.Stderr, "getting metadata failed") {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(out)), true, nil
}

// SetMeta is `rbd image-meta set IMG KEY VALUE`.
func (c *Client) SetMeta(ctx context.Context, img Image, key, value string) error {
	_, err := c.run(ctx, 0, "image-meta", "set", img.String(), key, value)
	return err
}

// HeaderMeta reads a metadata key as a read-only user can: rbd opens an
// image read-write for image-meta, which 'profile rbd-read-only' refuses,
// so it reads the image's id with rbd info and the key from the header
// object's omap with rados (from the same folder as rbd).
func (c *Client) HeaderMeta(ctx context.Context, img Image, key string) (string, bool, error) {
	var info struct {
		ID string `json:"id"`
	}
	if err := c.runJSON(ctx, &info, "info", img.String()); err != nil {
		return "", false, err
	}
	if !ValidName(info.ID) {
		return "", false, fmt.Errorf("rbd info %s: %q is not an image id", img, info.ID)
	}
	rados := *c
	rados.Conn.Binary = filepath.Join(filepath.Dir(c.Conn.binary()), "rados")
	if c.Conn.binary() == "rbd" {
		rados.Conn.Binary = "rados"
	}
	args := []string{"--pool", img.Pool}
	if img.Namespace != "" {
		args = append(args, "--namespace", img.Namespace)
	}
	out, err := rados.run(ctx, 0, append(args, "getomapval", "rbd_header."+info.ID, "metadata_"+key, "-")...)
	var e *CmdError
	// rados says "No such key: ..." on stdout, exit 1 (Ceph 16.2).
	if errors.As(err, &e) && e.ExitCode == 1 && strings.Contains(string(out)+e.Stderr, "No such key") {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return strings.TrimSpace(string(out)), true, nil
}
