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
		return out, fmt.Errorf("master key: %w", err)
	}
	out.masterKey = key
	return out, nil
}

// fileSecret reads a secret from path, or generates it there if the file
// does not exist.
func fileSecret(path, what string, log *slog.Logger, generate func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if info, serr := os.Stat(path); serr == nil && info.Mode().Perm()&0o077 != 0 {
			log.Warn(what+" file is readable by others; chmod 600 it", "path", path)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("%s file %s is empty", what, path)
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create %s file: %w", what, err)
	}
	if _, err := f.WriteString(v + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s file: %w", what, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("sync %s file: %w", what, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close %s file: %w", what, err)
	}
	log.Info("generated "+what, "path", path)
	return v, nil
}
