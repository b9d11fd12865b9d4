//! Reading QR codes back from the PNGs the library writes.

/// Decodes every QR code in a greyscale PNG (read with `png`, decoded with rqrr).
pub fn decode_png(png_bytes: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let max = *buf[..info.buffer_size()].iter().max().unwrap_or(&0);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let v = buf[y * info.line_size + x];
        if max <= 1 { v * 255 } else { v }
    });
    img.detect_grids()
        .into_iter()
        .map(|grid| grid.decode().expect("QR decodes").1)
        .collect()
}
