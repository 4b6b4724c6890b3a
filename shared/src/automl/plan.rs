//! Phase 1, the plan: which column is the target, what task it asks for, which metric selects
//! the model, and whether enough rows have a target value. A build runs this first; the domain
//! runs the same check ([`plan_build`]) when a build is requested, so a build that cannot work
//! is refused before anything is written, for the same reasons and in the same words.

use super::metrics::Metric;
use super::pipeline::Task;
use super::request::BuildRequest;
use super::target::{TargetError, resolve_target};
use super::task::{TaskError, encode_target, infer_task};
use crate::ingest::{Column, ColumnProfile, ColumnType, Table};
use thiserror::Error;

/// What a plan is made from.
#[derive(Debug, Clone, Copy)]
pub enum PlanInput<'a> {
    /// The whole table: the task is decided exactly as the build will decide it.
    Table(&'a Table),
    /// Only the columns' profiles and the row count (a table too large to read when a build is
    /// requested): the target is resolved and checked for type and distinct values, the task is
    /// left to the build.
    Profile {
        columns: &'a [ColumnProfile],
        rows: usize,
    },
}

/// What a build will do, decided before any training.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildPlan {
    pub target: String,
    /// `None` when planned from profiles only.
    pub task: Option<Task>,
    /// The selection metric: the requested one, else the task's default (`None` when neither
    /// is known).
    pub metric: Option<Metric>,
    /// The wall-clock budget the build will run with, in seconds.
    pub time_budget_s: f64,
    /// Rows with a target value (those a model learns from).
    pub labelled_rows: usize,
}

impl BuildPlan {
    /// Fewer rows with a target value than this cannot be split into training, validation and
    /// holdout.
    pub const MIN_ROWS: usize = 20;
}

/// Why a build cannot work, naming the request field at fault and the columns to choose from.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The target's values make no learnable task; `columns` are every column of the data.
    #[error("{error}")]
    Task {
        error: TaskError,
        columns: Vec<String>,
    },
    #[error("metric `{metric}` does not apply to a {task} task")]
    MetricMismatch {
        metric: &'static str,
        task: &'static str,
    },
    #[error(
        "only {rows} rows have a value for target `{target}`; at least {} are needed",
        BuildPlan::MIN_ROWS
    )]
    TooFewRows { target: String, rows: usize },
}

impl PlanError {
    /// The request field at fault (`target` or `metric`); `None` when the data itself cannot
    /// work (too few rows with a target value).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            PlanError::Target(_) | PlanError::Task { .. } => Some("target"),
            PlanError::MetricMismatch { .. } => Some("metric"),
            PlanError::TooFewRows { .. } => None,
        }
    }

    /// The columns the user can pick a target from (empty when choosing another would not
    /// help).
    pub fn candidates(&self) -> &[String] {
        match self {
            PlanError::Target(e) => e.candidates(),
            PlanError::Task { columns, .. } => columns,
            PlanError::MetricMismatch { .. } | PlanError::TooFewRows { .. } => &[],
        }
    }
}

/// Checks that a build of `input` as `request` asks can work, and says what it will do.
pub fn plan_build(input: PlanInput<'_>, request: &BuildRequest) -> Result<BuildPlan, PlanError> {
    match input {
        PlanInput::Table(table) => {
            let plan = TablePlan::resolve(table, request)?;
            plan.check_rows()?;
            Ok(BuildPlan {
                target: plan.target,
                task: Some(plan.task),
                metric: Some(plan.metric),
                time_budget_s: request.budget_s(),
                labelled_rows: plan.labelled.len(),
            })
        }
        PlanInput::Profile { columns, rows } => plan_from_profile(columns, rows, request),
    }
}

/// The plan of a build over the table it runs on, with the target encoded per row.
pub(crate) struct TablePlan<'t> {
    pub target: String,
    pub column: &'t Column,
    pub task: Task,
    pub metric: Metric,
    /// The rows with a target value, in table order.
    pub labelled: Vec<usize>,
    /// The encoded target (class index or value) of each labelled row.
    pub y: Vec<f64>,
}

impl<'t> TablePlan<'t> {
    /// Resolves the target, decides the task over every row and the metric; the rows are
    /// checked separately ([`TablePlan::check_rows`]) so that a build can report the target
    /// first.
    pub fn resolve(table: &'t Table, request: &BuildRequest) -> Result<Self, PlanError> {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let target = target_among(&names, request)?;
        let column = table
            .column(&target)
            .ok_or_else(|| TargetError::UnknownColumn {
                name: target.clone(),
                columns: names.iter().map(|s| s.to_string()).collect(),
            })?;
        let all_rows: Vec<usize> = (0..table.n_rows).collect();
        let task =
            infer_task(column, &all_rows, &request.intent).map_err(|error| PlanError::Task {
                error,
                columns: names.iter().map(|s| s.to_string()).collect(),
            })?;
        let metric = selection_metric(request.metric, &task)?;
        // Rows without a target value teach nothing.
        let encoded = encode_target(column, &task, &all_rows);
        let labelled: Vec<usize> = all_rows
            .iter()
            .copied()
            .filter(|&r| encoded[r].is_some())
            .collect();
        let y = labelled
            .iter()
            .map(|&r| encoded[r].unwrap_or(0.0))
            .collect();
        Ok(TablePlan {
            target,
            column,
            task,
            metric,
            labelled,
            y,
        })
    }

    pub fn check_rows(&self) -> Result<(), PlanError> {
        check_rows(&self.target, self.labelled.len())
    }
}

/// The column the request names, explicitly, through its output schema or in its intent.
fn target_among(names: &[&str], request: &BuildRequest) -> Result<String, TargetError> {
    resolve_target(
        names,
        &request.intent,
        request.target.as_deref(),
        &request.output_fields(),
    )
}

/// The requested metric, else the task's default; refused when it does not fit the task.
fn selection_metric(requested: Option<Metric>, task: &Task) -> Result<Metric, PlanError> {
    let metric = requested.unwrap_or_else(|| Metric::default_for(task));
    if metric.is_classification() == matches!(task, Task::Regression) {
        return Err(PlanError::MetricMismatch {
            metric: metric.name(),
            task: task.kind_name(),
        });
    }
    Ok(metric)
}

fn check_rows(target: &str, labelled: usize) -> Result<(), PlanError> {
    if labelled < BuildPlan::MIN_ROWS {
        return Err(PlanError::TooFewRows {
            target: target.to_string(),
            rows: labelled,
        });
    }
    Ok(())
}

fn plan_from_profile(
    columns: &[ColumnProfile],
    rows: usize,
    request: &BuildRequest,
) -> Result<BuildPlan, PlanError> {
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let target = target_among(&names, request)?;
    let refuse = |error: TaskError| PlanError::Task {
        error,
        columns: names.iter().map(|s| s.to_string()).collect(),
    };
    let mut labelled = rows;
    if let Some(column) = columns.iter().find(|c| c.name == target) {
        if column.kind == ColumnType::Datetime {
            return Err(refuse(TaskError::DatetimeTarget { column: target }));
        }
        if column.unique <= 1 {
            return Err(refuse(TaskError::AtMostOneValue { column: target }));
        }
        labelled = rows.saturating_sub(column.missing);
    }
    check_rows(&target, labelled)?;
    Ok(BuildPlan {
        target,
        task: None,
        metric: request.metric,
        time_budget_s: request.budget_s(),
        labelled_rows: labelled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{ColumnData, ColumnProfile};

    fn profile(name: &str, kind: ColumnType, missing: usize, unique: usize) -> ColumnProfile {
        ColumnProfile {
            name: name.into(),
            kind,
            missing,
            unique,
            min: None,
            max: None,
            mean: None,
            top_values: None,
        }
    }

    fn numbers(name: &str, kind: ColumnType, values: Vec<f64>) -> Column {
        Column {
            name: name.into(),
            kind,
            data: ColumnData::Numeric(values),
        }
    }

    fn table(y: Vec<f64>) -> Table {
        let n = y.len();
        Table {
            columns: vec![
                numbers("x", ColumnType::Float, (0..n).map(|i| i as f64).collect()),
                numbers("price", ColumnType::Float, y),
            ],
            n_rows: n,
        }
    }

    #[test]
    fn a_table_plan_resolves_target_task_metric_and_budget() {
        let t = table((0..30).map(|i| (i % 7) as f64 * 1.5).collect());
        let mut request = BuildRequest::new("predict the price");
        request.time_budget_s = 1e9;
        let plan = plan_build(PlanInput::Table(&t), &request);
        assert_eq!(
            plan,
            Ok(BuildPlan {
                target: "price".into(),
                task: Some(Task::Regression),
                metric: Some(Metric::Rmse),
                time_budget_s: 86_400.0,
                labelled_rows: 30,
            })
        );
    }

    #[test]
    fn refusals_name_the_field_and_the_columns() {
        let t = table((0..30).map(|i| i as f64).collect());
        let e = plan_build(
            PlanInput::Table(&t),
            &BuildRequest::new("predict the weather"),
        );
        let Err(e) = e else { panic!("planned {e:?}") };
        assert_eq!(e.field(), Some("target"));
        assert_eq!(e.candidates(), ["x".to_string(), "price".to_string()]);

        let mut request = BuildRequest::new("predict price");
        request.metric = Some(Metric::Accuracy);
        let e = plan_build(PlanInput::Table(&t), &request);
        assert!(matches!(
            e,
            Err(PlanError::MetricMismatch {
                task: "regression",
                ..
            })
        ));
        assert_eq!(e.err().and_then(|e| e.field()), Some("metric"));

        // Rows without a target value do not count.
        let mut y: Vec<f64> = (0..30).map(|i| i as f64).collect();
        y[..15].iter_mut().for_each(|v| *v = f64::NAN);
        let e = plan_build(
            PlanInput::Table(&table(y)),
            &BuildRequest::new("predict price"),
        );
        let Err(e) = e else { panic!("planned {e:?}") };
        assert_eq!(
            e,
            PlanError::TooFewRows {
                target: "price".into(),
                rows: 15
            }
        );
        assert_eq!((e.field(), e.candidates().len()), (None, 0));
    }

    #[test]
    fn a_profile_plan_checks_what_profiles_tell() {
        let columns = [
            profile("issued", ColumnType::Datetime, 0, 40),
            profile("flag", ColumnType::Boolean, 0, 1),
            profile("price", ColumnType::Float, 25, 30),
        ];
        let plan = |intent: &str| {
            plan_build(
                PlanInput::Profile {
                    columns: &columns,
                    rows: 50,
                },
                &BuildRequest::new(intent),
            )
        };
        let e = plan("predict issued");
        assert!(matches!(
            e,
            Err(PlanError::Task {
                error: TaskError::DatetimeTarget { .. },
                ..
            })
        ));
        assert!(matches!(
            plan("predict the flag"),
            Err(PlanError::Task {
                error: TaskError::AtMostOneValue { .. },
                ..
            })
        ));
        assert_eq!(
            plan("predict price"),
            Ok(BuildPlan {
                target: "price".into(),
                task: None,
                metric: None,
                time_budget_s: BuildRequest::DEFAULT_TIME_BUDGET_S,
                labelled_rows: 25,
            })
        );
    }
}
