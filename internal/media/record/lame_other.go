//go:build !linux

package record

// lowerPriority is a no-op off Linux.
func lowerPriority(int) {}
