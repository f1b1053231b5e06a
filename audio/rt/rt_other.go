//go:build !linux

package rt

import (
	"errors"
	"fmt"
)

// Lock reports that real-time threads are not supported here (only on
// Linux so far); nothing changes.
func Lock(priority int) (unlock func(), err error) {
	return nil, fmt.Errorf("%w: %w", ErrNotPermitted, errors.ErrUnsupported)
}
