package wire

import "math"

// ordered32 maps float bits to integers in the floats' order (negative
// floats get their magnitude bits flipped), so that close values have close
// integers; it is its own inverse.
func ordered32(v uint32) uint32 {
	if v&0x80000000 != 0 {
		return v ^ 0x7fffffff
	}
	return v
}

func ordered16(v uint16) uint16 {
	if v&0x8000 != 0 {
		return v ^ 0x7fff
	}
	return v
}

// zigzag maps small differences of either sign to small unsigned values.
func zigzag32(v uint32) uint32   { return v<<1 ^ uint32(int32(v)>>31) }
func unzigzag32(v uint32) uint32 { return v>>1 ^ -(v & 1) }
func zigzag16(v uint16) uint16   { return v<<1 ^ uint16(int16(v)>>15) }
func unzigzag16(v uint16) uint16 { return v>>1 ^ -(v & 1) }

// f32ToF16 rounds f to the nearest IEEE 754 half float (ties to even);
// overflow gives ±Inf, NaN stays NaN.
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7c00 | 0x200 | uint16(mant>>13) // quiet NaN, top payload bits kept
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 { // half subnormal (or zero)
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to ±0
		}
		m := mant | 0x800000
		shift := uint(14 - e)
		q := m >> shift
		rem, halfway := m&(1<<shift-1), uint32(1)<<(shift-1)
		if rem > halfway || (rem == halfway && q&1 == 1) {
			q++
		}
		return sign | uint16(q)
	}
	q := uint32(e)<<10 | mant>>13
	if rem := mant & 0x1fff; rem > 0x1000 || (rem == 0x1000 && q&1 == 1) {
		q++ // a carry into the exponent is right, up to and including Inf
	}
	return sign | uint16(q)
}

// f16ToF32 converts a half float exactly.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
