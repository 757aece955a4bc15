package webrtc

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuByLabel reads a gzipped CPU profile (runtime/pprof's profile.proto, github.com/google/pprof
// proto/profile.proto) and returns the CPU nanoseconds sampled per value of the goroutine label
// key ("" for goroutines without it: GC workers, timers, the runtime). It decodes only the
// fields it needs: Profile.sample_type (1), sample (2), string_table (6); Sample.value (2),
// label (3); Label.key (1), str (2).
func cpuByLabel(gz []byte, key string) (map[string]int64, error) {
	r, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	type sample struct {
		values []int64
		labels [][2]int64 // key, str string-table indexes
	}
	var (
		types   [][2]int64 // type, unit string-table indexes
		samples []sample
		strs    []string
	)
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var vt [2]int64
			err := fields(v, func(n protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
				if n == 1 || n == 2 {
					vt[n-1] = int64(x)
				}
				return nil
			})
			types = append(types, vt)
			return err
		case num == 2 && typ == protowire.BytesType:
			var s sample
			err := fields(v, func(n protowire.Number, t protowire.Type, p []byte, x uint64) error {
				switch {
				case n == 2 && t == protowire.BytesType: // packed
					for len(p) > 0 {
						x, m := protowire.ConsumeVarint(p)
						if m < 0 {
							return protowire.ParseError(m)
						}
						s.values, p = append(s.values, int64(x)), p[m:]
					}
				case n == 2:
					s.values = append(s.values, int64(x))
				case n == 3 && t == protowire.BytesType:
					var l [2]int64
					err := fields(p, func(n protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
						if n == 1 || n == 2 {
							l[n-1] = int64(x)
						}
						return nil
					})
					s.labels = append(s.labels, l)
					return err
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case num == 6 && typ == protowire.BytesType:
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i >= 0 && int(i) < len(strs) {
			return strs[i]
		}
		return ""
	}
	col := -1
	for i, vt := range types {
		if str(vt[0]) == "cpu" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("profile: no cpu sample type")
	}
	out := map[string]int64{}
	for _, s := range samples {
		if col >= len(s.values) {
			continue
		}
		side := ""
		for _, l := range s.labels {
			if str(l[0]) == key {
				side = str(l[1])
			}
		}
		out[side] += s.values[col]
	}
	return out, nil
}

// fields calls f for each field of the protobuf message b: the bytes of length-delimited
// fields, the value of varint and fixed ones.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
