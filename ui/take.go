package ui

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/go-audio/wav"

	"github.com/duetapp/duet/audio/record"
)

// waveColumns is how many peaks a take's waveform has.
const waveColumns = 240

// takeSummary is what the screen tells of a finished take.
type takeSummary struct {
	dir    string
	length time.Duration // of the mix
	files  []string      // names and sizes, as shown
	peaks  []float32     // the mix's peak in each column, 0…1
}

// summarize reads the take in dir: its files and the mix's length and
// waveform. It reads the mix a block at a time (a long take is large)
// and may block: the command worker calls it.
func summarize(dir string) (takeSummary, error) {
	sum := takeSummary{dir: dir}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return sum, err
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && !e.IsDir() {
			sum.files = append(sum.files, fmt.Sprintf("%s (%s)", e.Name(), size(info.Size())))
		}
	}
	sum.peaks, sum.length, err = envelope(filepath.Join(dir, record.MixFile), waveColumns)
	return sum, err
}

// envelope reads a WAV file's peaks in columns equal parts (each the
// highest magnitude of any channel, 0…1) and its length. It decodes the
// integer PCM itself, a block at a time: go-audio's PCMBuffer, sample by
// sample, took 1.3 s for a five-minute take.
func envelope(path string, columns int) ([]float32, time.Duration, error) {
	name := filepath.Base(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	d := wav.NewDecoder(f)
	if !d.IsValidFile() {
		return nil, 0, fmt.Errorf("%s is not a WAV file", name)
	}
	if err := d.FwdToPCM(); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	width := int(d.BitDepth / 8)
	frameBytes := int64(width) * int64(d.NumChans)
	if width < 1 || width > 4 || frameBytes == 0 || d.SampleRate == 0 || d.WavAudioFormat != 1 {
		return nil, 0, fmt.Errorf("%s is not integer PCM", name)
	}
	frames := d.PCMLen() / frameBytes
	length := time.Duration(frames) * time.Second / time.Duration(d.SampleRate)
	peaks := make([]float32, columns)
	full := float32(int64(1) << (8*width - 1))
	buf := make([]byte, 16384*frameBytes)
	var sample int64 // samples read, all channels
	for frames > 0 {
		n, err := io.ReadFull(d.PCMChunk, buf)
		n -= n % width
		for i := 0; i < n; i += width {
			col := min(int((sample/int64(d.NumChans))*int64(columns)/frames), columns-1)
			peaks[col] = max(peaks[col], magnitude(buf[i:i+width])/full)
			sample++
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return peaks, length, nil
}

// magnitude is the absolute value of one little-endian PCM sample of
// len(b) bytes (8-bit PCM is unsigned, wider is signed).
func magnitude(b []byte) float32 {
	var v int32
	switch len(b) {
	case 1:
		v = (int32(b[0]) - 128) // full scale 128 as for the others' top bit
	case 2:
		v = int32(int16(binary.LittleEndian.Uint16(b)))
	case 3:
		v = int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
	case 4:
		v = int32(binary.LittleEndian.Uint32(b))
	}
	return float32(max(int64(v), -int64(v)))
}

// size is a file size in KB or MB, for a singer.
func size(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d KB", (n+1023)/1024)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
}

// text is the summary in words.
func (s takeSummary) text() string {
	return fmt.Sprintf("%s: %s. Files: %s.", filepath.Base(s.dir), clock(s.length), strings.Join(s.files, ", "))
}

// waveform draws a take's peaks, mirrored around the middle.
type waveform struct {
	widget.BaseWidget
	peaks []float32
}

func newWaveform() *waveform {
	w := &waveform{}
	w.ExtendBaseWidget(w)
	return w
}

// set shows peaks (0…1); nil shows nothing.
func (w *waveform) set(peaks []float32) {
	w.peaks = peaks
	w.Refresh()
}

func (w *waveform) CreateRenderer() fyne.WidgetRenderer {
	r := canvas.NewRaster(func(width, height int) image.Image {
		img := image.NewNRGBA(image.Rect(0, 0, width, height))
		c := w.Theme().Color(theme.ColorNamePrimary, fyne.CurrentApp().Settings().ThemeVariant())
		drawPeaks(img, w.peaks, c)
		return img
	})
	return &waveRenderer{w: w, raster: r}
}

// drawPeaks paints peaks across img, each column the peak of its share.
func drawPeaks(img *image.NRGBA, peaks []float32, c color.Color) {
	b := img.Bounds()
	if len(peaks) == 0 {
		return
	}
	mid := b.Dy() / 2
	for x := range b.Dx() {
		p := peaks[x*len(peaks)/b.Dx()]
		h := max(int(p*float32(mid)+0.5), 0)
		if p > 0 {
			h = max(h, 1)
		}
		for y := mid - h; y <= mid+h && y < b.Dy(); y++ {
			img.Set(b.Min.X+x, b.Min.Y+max(y, 0), c)
		}
	}
}

type waveRenderer struct {
	w      *waveform
	raster *canvas.Raster
}

func (r *waveRenderer) MinSize() fyne.Size {
	return fyne.NewSize(120, 2*theme.TextSize())
}
func (r *waveRenderer) Layout(size fyne.Size) { r.raster.Resize(size) }
func (r *waveRenderer) Refresh() {
	r.raster.Hidden = len(r.w.peaks) == 0
	r.raster.Refresh()
}
func (r *waveRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.raster} }
func (r *waveRenderer) Destroy()                     {}
