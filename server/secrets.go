package server

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/apikeyd/apikeyd/apikey"
	"github.com/apikeyd/apikeyd/config"
	"github.com/apikeyd/apikeyd/seal"
)

type secrets struct {
	adminToken string
	masterKey  []byte
}

func dataPath(cfg config.Config, name string) string { return filepath.Join(cfg.DataDir, name) }

// loadSecrets returns the admin token and master key: from the config when
// set, otherwise (SQLite only) from files in the data directory, generated
// on first start with mode 0600. Only paths are logged, never contents.
func loadSecrets(cfg config.Config, log *slog.Logger) (secrets, error) {
	var out secrets
	out.adminToken = cfg.AdminToken
	if out.adminToken == "" {
		tok, err := fileSecret(dataPath(cfg, "admin.token"), "admin token", log, func() (string, error) {
			s, err := apikey.GenerateKey("admin")
			return s.Plaintext, err
		})
		if err != nil {
			return out, err
		}
		out.adminToken = tok
	}
	mk := cfg.MasterKey
	if mk == "" {
		var err error
		mk, err = fileSecret(dataPath(cfg, "master.key"), "master key", log, seal.GenerateKey)
		if err != nil {
			return out, err
		}
	}
	key, err := seal.ParseKey(mk)
	if err != nil {
		if cfg.MasterKey == "" {
			return out, fmt.Errorf("master key file %s: %w; restore it from a backup (webhook secrets and undelivered keys are sealed with it)",
				dataPath(cfg, "master.key"), err)
		}
		return out, fmt.Errorf("master key: %w", err)
	}
	out.masterKey = key
	return out, nil
}

// fileSecret reads a secret from path, or generates it there if the file
// does not exist. The file is written whole or not at all (writeFileAtomic),
// so a start interrupted by a crash or a full disk leaves no empty or
// half-written secret behind; one left by an older version is reported
// with what to do about it.
func fileSecret(path, what string, log *slog.Logger, generate func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if info, serr := os.Stat(path); serr == nil && info.Mode().Perm()&0o077 != 0 {
			log.Warn(what+" file is readable by others; chmod 600 it", "path", path)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s file %s is empty, probably left by a first start that was interrupted (full disk, crash): "+
				"if this data directory has never served, delete the file and start again to generate a new one; "+
				"otherwise restore it from a backup", what, path)
		}
		return v, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	v, err := generate()
	if err != nil {
		return "", fmt.Errorf("generate %s: %w", what, err)
	}
	if err := writeFileAtomic(path, []byte(v+"\n")); err != nil {
		return "", fmt.Errorf("write %s file: %w", what, err)
	}
	log.Info("generated "+what, "path", path)
	return v, nil
}

// writeFileAtomic creates path with data and mode 0600, all or nothing: it
// writes a temporary file in the same directory, syncs it, renames it into
// place and syncs the directory, so that after a crash path either does
// not exist or holds all of data. The data directory's lock keeps other
// processes from racing for path.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
