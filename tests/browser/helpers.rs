//! Waiting, screenshots, QR decoding and enrolling.

use super::*;

/// Polls `check` until it returns `Some`, failing after [`STEP`]. Errors (an element
/// replaced by the list's refresh, not there yet) count as "not yet".
pub(super) async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, CmdError>>,
{
    let deadline = Instant::now() + STEP;
    let mut last;
    loop {
        match check().await {
            Ok(Some(value)) => return value,
            Ok(None) => last = "condition not met".into(),
            Err(e) => last = e.to_string(),
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) async fn text_of(c: &Client, css: &str) -> Result<String, CmdError> {
    c.find(Locator::Css(css)).await?.text().await
}

pub(super) async fn displayed(c: &Client, css: &str) -> Result<bool, CmdError> {
    c.find(Locator::Css(css)).await?.is_displayed().await
}

pub(super) async fn fill(c: &Client, css: &str, value: &str) {
    let field = c.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// The status and uses shown in the list row of token `id`, once the row is there.
pub(super) async fn row_state(c: &Client, id: &str) -> Result<Option<(String, String)>, CmdError> {
    let rows = c
        .find_all(Locator::Css(&format!("tr[data-id=\"{id}\"]")))
        .await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let status = row.attr("data-status").await?.unwrap_or_default();
    let uses = row.find(Locator::Css("td.uses")).await?.text().await?;
    Ok(Some((status, uses)))
}

pub(super) fn save_screenshot(name: &str, png: &[u8]) {
    if let Some(dir) = std::env::var_os("MDM_SERVER_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

pub(super) async fn snapshot(c: &Client, name: &str) {
    if std::env::var_os("MDM_SERVER_SCREENSHOTS").is_some() {
        save_screenshot(name, &c.screenshot().await.unwrap());
    }
}

/// Reads the QR codes in a screenshot (a PNG of any colour type).
pub(super) fn decode_qr(png_bytes: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        let px = &buf[y * info.line_size + x * channels..];
        if channels >= 3 {
            ((u16::from(px[0]) + u16::from(px[1]) + u16::from(px[2])) / 3) as u8
        } else {
            px[0]
        }
    });
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

pub(super) async fn enroll(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    device: &str,
) -> (u16, Value) {
    let response = http
        .post(format!("{base}/api/enroll"))
        .json(&json!({"token": token, "device_id": device}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
