//! Predictions: one row (`infer`), a JSON batch, and a CSV file of any length sent in batches
//! of at most [`MAX_BATCH_ROWS`] rows, the answers stitched into one CSV.

use super::{Client, ClientError, Progress};
use crate::api::predictions::{InferResponse, PredictionItem};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use std::io::{Read, Write};

/// The most rows one `predictions` request takes (SPEC §1).
pub use crate::api::predictions::MAX_BATCH_ROWS;

/// What a CSV prediction run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvRun {
    pub rows: u64,
    pub batches: u64,
}

impl Client {
    /// Predicts one row (the version must be deployed).
    pub async fn infer(
        &self,
        model_name: &str,
        version: &str,
        row: &Value,
    ) -> Result<InferResponse, ClientError> {
        self.post(&["models", model_name, version, "infer"], row)
            .await
    }

    /// Predicts a JSON batch of at most [`MAX_BATCH_ROWS`] rows.
    pub async fn predict_rows(
        &self,
        model_name: &str,
        version: &str,
        rows: &[Value],
    ) -> Result<Vec<PredictionItem>, ClientError> {
        self.post(&["models", model_name, version, "predictions"], &rows)
            .await
    }

    /// Predicts one CSV batch (a header and at most [`MAX_BATCH_ROWS`] rows): the same CSV
    /// with the prediction columns appended.
    pub async fn predict_csv_batch(
        &self,
        model_name: &str,
        version: &str,
        csv: Vec<u8>,
    ) -> Result<bytes::Bytes, ClientError> {
        let url = self.url(&["models", model_name, version, "predictions"], &[]);
        let response = self
            .send(
                self.request(Method::POST, url.clone())
                    .header(CONTENT_TYPE, "text/csv")
                    .header(ACCEPT, "text/csv")
                    .body(csv),
                &url,
            )
            .await?;
        response
            .bytes()
            .await
            .map_err(|e| ClientError::connection(&url, e))
    }

    /// Predicts every row of the CSV `input` in batches of `batch_rows` (1 to
    /// [`MAX_BATCH_ROWS`]) and writes one CSV to `output`: the input's columns and the
    /// prediction columns, rows in input order. `progress` gets the input's bytes as they are
    /// predicted.
    pub async fn predict_csv(
        &self,
        model_name: &str,
        version: &str,
        input: impl Read,
        output: impl Write,
        batch_rows: usize,
        progress: &dyn Progress,
    ) -> Result<CsvRun, ClientError> {
        if !(1..=MAX_BATCH_ROWS).contains(&batch_rows) {
            return Err(ClientError::Invalid(format!(
                "a batch is 1 to {MAX_BATCH_ROWS} rows (got {batch_rows})"
            )));
        }
        let mut reader = csv::ReaderBuilder::new().from_reader(input);
        let header = reader
            .byte_headers()
            .map_err(|e| csv_error("the input", &e))?
            .clone();
        let mut writer = csv::Writer::from_writer(output);
        let mut run = CsvRun {
            rows: 0,
            batches: 0,
        };
        let mut consumed = 0u64;
        let mut records = reader.byte_records();
        loop {
            let mut batch = csv::Writer::from_writer(Vec::new());
            batch
                .write_byte_record(&header)
                .map_err(|e| csv_error("a batch", &e))?;
            let mut rows = 0usize;
            for record in records.by_ref() {
                let record = record.map_err(|e| csv_error("the input", &e))?;
                batch
                    .write_byte_record(&record)
                    .map_err(|e| csv_error("a batch", &e))?;
                rows += 1;
                if rows == batch_rows {
                    break;
                }
            }
            if rows == 0 && run.batches > 0 {
                break;
            }
            if rows == 0 {
                return Err(ClientError::Content(
                    "the input CSV has no rows to predict (it is empty or only a header)".into(),
                ));
            }
            let body = batch
                .into_inner()
                .map_err(|e| ClientError::Content(format!("writing a batch: {e}")))?;
            let answer = self.predict_csv_batch(model_name, version, body).await?;
            let mut answer_reader = csv::ReaderBuilder::new().from_reader(answer.as_ref());
            let answer_header = answer_reader
                .byte_headers()
                .map_err(|e| csv_error("the answer", &e))?
                .clone();
            if run.batches == 0 {
                writer
                    .write_byte_record(&answer_header)
                    .map_err(|e| csv_error("the output", &e))?;
            }
            let mut answered = 0usize;
            for record in answer_reader.byte_records() {
                let record = record.map_err(|e| csv_error("the answer", &e))?;
                writer
                    .write_byte_record(&record)
                    .map_err(|e| csv_error("the output", &e))?;
                answered += 1;
            }
            if answered != rows {
                return Err(ClientError::Content(format!(
                    "batch {} sent {rows} rows but {answered} predictions came back",
                    run.batches + 1
                )));
            }
            run.rows += rows as u64;
            run.batches += 1;
            let position = records.reader().position().byte();
            progress.advance(position.saturating_sub(consumed));
            consumed = position;
            if rows < batch_rows {
                break;
            }
        }
        writer
            .flush()
            .map_err(|e| ClientError::Content(format!("writing the output: {e}")))?;
        Ok(run)
    }
}

fn csv_error(what: &str, e: &csv::Error) -> ClientError {
    ClientError::Content(format!("{what} is not readable CSV: {e}"))
}
