//! `lure init [DIR] [--lang lua|rhai] [--template NAME] [--force]` (SPEC 10): a
//! function folder to start from. The handler is one of the examples of
//! `scripts/` (compiled in, so what `lure init` writes is what the tests run),
//! with its sample event under `events/`, a SAM `template.yaml` that takes the lure
//! layer as a parameter, and the editor definitions (SPEC 11) under
//! `.lure/types/`, with a `.luarc.json` pointing the Lua Language Server at them.

use std::path::{Path, PathBuf};

use super::types;

/// A script language of lure's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Lua,
    Rhai,
}

impl Lang {
    pub fn parse(name: &str) -> Option<Lang> {
        match name {
            "lua" => Some(Lang::Lua),
            "rhai" => Some(Lang::Rhai),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Lang::Lua => "lua",
            Lang::Rhai => "rhai",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lang::Lua => "Lua",
            Lang::Rhai => "Rhai",
        }
    }
}

/// One template: an example of `scripts/` and what its SAM template adds.
pub struct Template {
    pub name: &'static str,
    /// The example's name in `scripts/`, and the handler's file name.
    stem: &'static str,
    lua: &'static str,
    rhai: &'static str,
    event: &'static str,
    /// Lines added to the function's `Properties` (indented 6).
    properties: &'static str,
    /// Resources next to the function (indented 2).
    resources: &'static str,
    /// Outputs next to the function's name (indented 2).
    outputs: &'static str,
}

macro_rules! example {
    ($stem:literal) => {
        (
            $stem,
            include_str!(concat!("../../scripts/", $stem, ".lua")),
            include_str!(concat!("../../scripts/rhai/", $stem, ".rhai")),
            include_str!(concat!("../../scripts/events/", $stem, ".json")),
        )
    };
}

const fn template(
    name: &'static str,
    (stem, lua, rhai, event): (&'static str, &'static str, &'static str, &'static str),
    properties: &'static str,
    resources: &'static str,
    outputs: &'static str,
) -> Template {
    Template {
        name,
        stem,
        lua,
        rhai,
        event,
        properties,
        resources,
        outputs,
    }
}

pub const TEMPLATES: &[Template] = &[
    template("hello", example!("hello"), "", "", ""),
    template(
        "api",
        example!("api_gateway"),
        "      Events:
        Api:
          Type: HttpApi
",
        "",
        "  ApiUrl:
    Description: the HTTP API's URL
    Value: !Sub \"https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/\"
",
    ),
    template(
        "sqs",
        example!("sqs_batch"),
        "      Events:
        Orders:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 10
            # The handler lists the messages it could not process (batchItemFailures).
            FunctionResponseTypes:
              - ReportBatchItemFailures
",
        "  Queue:
    Type: AWS::SQS::Queue
    Properties:
      # At least six times the function's timeout, as AWS advises.
      VisibilityTimeout: 60
",
        "  QueueUrl:
    Description: send messages here
    Value: !Ref Queue
",
    ),
    template(
        "s3",
        example!("s3_object"),
        "      Events:
        Objects:
          Type: S3
          Properties:
            Bucket: !Ref Bucket
            Events:
              - s3:ObjectCreated:*
              - s3:ObjectRemoved:*
",
        "  Bucket:
    Type: AWS::S3::Bucket
",
        "  BucketName:
    Description: objects put here invoke the function
    Value: !Ref Bucket
",
    ),
    template(
        "schedule",
        example!("schedule"),
        "      Events:
        Hourly:
          Type: Schedule
          Properties:
            Schedule: rate(1 hour)
",
        "",
        "",
    ),
    template(
        "stream",
        example!("stream_csv"),
        "      # Response streaming: the URL streams what the handler writes.
      FunctionUrlConfig:
        AuthType: AWS_IAM
        InvokeMode: RESPONSE_STREAM
",
        "",
        "  FunctionUrl:
    Description: the function's URL (it takes signed requests, AuthType AWS_IAM)
    Value: !GetAtt FunctionUrl.FunctionUrl
",
    ),
];

pub fn find(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

pub struct InitOptions {
    pub dir: PathBuf,
    pub lang: Lang,
    pub template: &'static Template,
    pub force: bool,
}

/// What `lure init` wrote, for its message.
pub struct Made {
    pub handler: String,
    pub files: Vec<PathBuf>,
    pub event: PathBuf,
}

/// Writes the function folder; refuses a folder that holds anything unless
/// `force`.
pub fn init(options: &InitOptions) -> Result<Made, String> {
    let dir = &options.dir;
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !options.force {
        return Err(format!(
            "{} is not empty: choose an empty or new folder, or pass --force to write into it",
            dir.display()
        ));
    }
    let template = options.template;
    let ext = options.lang.extension();
    let script = match options.lang {
        Lang::Lua => template.lua,
        Lang::Rhai => template.rhai,
    };
    let handler = format!("{}.handler", template.stem);
    let event = Path::new("events").join(format!("{}.json", template.stem));
    let mut files: Vec<(PathBuf, String)> = vec![
        (format!("{}.{ext}", template.stem).into(), script.to_owned()),
        (event.clone(), template.event.to_owned()),
        ("template.yaml".into(), sam_template(template, options.lang)),
    ];
    if options.lang == Lang::Lua {
        files.push((".luarc.json".into(), LUARC.to_owned()));
    }
    let written = types::write_files(
        dir,
        files
            .iter()
            .map(|(path, text)| (path.clone(), text.as_str())),
    )
    .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
    let types = types::write(&dir.join(".lure/types"))
        .map_err(|e| format!("cannot write the editor definitions: {e}"))?;
    // Its snapshots, so that the new function's `lure test` passes at once.
    let snapshots = super::test::record(dir)?;
    Ok(Made {
        handler,
        files: written.into_iter().chain(snapshots).chain(types).collect(),
        event: dir.join(event),
    })
}

/// The Lua Language Server's settings: Lua 5.4 and lure's definitions.
const LUARC: &str = r#"{
  "runtime.version": "Lua 5.4",
  "workspace.library": [".lure/types/lua"]
}
"#;

/// The SAM template: the function on `provided.al2023` with the lure layer (a
/// parameter), and what the template's trigger needs.
fn sam_template(template: &Template, lang: Lang) -> String {
    let outputs = template.outputs;
    let resources = template.resources;
    let properties = template.properties;
    format!(
        r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: >-
  A lure function ({lang}, the {name} template), made by `lure init`.
  Deploy it with the layer's ARN (see lure's README, "Deploy"):
  sam deploy --guided --parameter-overrides LureLayerArn=arn:aws:lambda:REGION:ACCOUNT:layer:lure:1

Parameters:
  LureLayerArn:
    Type: String
    Description: The ARN of a lure layer version (the runtime, /opt/bootstrap)

Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      # The scripts are the whole package: small enough to edit in the Lambda console.
      CodeUri: .
      Handler: {stem}.handler
      Runtime: provided.al2023
      Architectures:
        - x86_64
      Layers:
        - !Ref LureLayerArn
      MemorySize: 128
      Timeout: 10
{properties}{resources_header}{resources}
Outputs:
  FunctionName:
    Description: the function's name
    Value: !Ref Function
{outputs}"#,
        lang = lang.name(),
        name = template.name,
        stem = template.stem,
        resources_header = if resources.is_empty() { "" } else { "\n" },
    )
}
