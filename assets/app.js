// Progressive enhancement only: every form works without this file (the server then
// shows its own confirmation step). A form with data-confirm asks here instead, once,
// and on "OK" tells the server the question was answered. With data-reason the same
// question also takes the optional reason shown to the person (a prompt, not a box in
// every row).
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (!question) {
    return;
  }
  var reasonLabel = form.getAttribute("data-reason");
  var answer = reasonLabel
    ? window.prompt(question + "\n\n" + reasonLabel + ":", "")
    : window.confirm(question);
  if (answer === null || answer === false) {
    event.preventDefault();
    return;
  }
  add(form, "confirm", "yes");
  if (reasonLabel) {
    add(form, "reason", answer);
  }
});

function add(form, name, value) {
  var field = document.createElement("input");
  field.type = "hidden";
  field.name = name;
  field.value = value;
  form.appendChild(field);
}
